"""The LLM engine: tokenizer, chat template, KV-cache decoding, sampling and streaming (numpy + onnxruntime)."""
