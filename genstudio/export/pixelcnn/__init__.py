"""Autoregressive images: a class-conditional gated PixelCNN on Fashion-MNIST, its training and ONNX export."""
