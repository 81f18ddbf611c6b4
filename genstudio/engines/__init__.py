"""Engines: one module per generative family. numpy + onnxruntime + tokenizers; no Qt, no torch."""
