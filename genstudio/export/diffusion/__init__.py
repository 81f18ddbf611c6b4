"""Text-to-image diffusion: word-level tokenizer, text encoder, UNet, training and per-component ONNX export."""
