"""The GAN family's export pipeline: a small style-based generator, its discriminator, training with EMA, ONNX export."""
