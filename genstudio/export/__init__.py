"""The export pipeline: PyTorch models, datasets, training, ONNX export and parity checks. No Qt."""
