"""Normalizing flows: 2-D densities, RealNVP/Glow flows, the Fashion-MNIST image flow, ONNX export."""
