"""The LLM export pipeline: GGUF in (validated), PyTorch Llama, ONNX with a KV cache, int4, tokenizer, checks."""
