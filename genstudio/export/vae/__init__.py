"""Variational autoencoders: the convolutional VAE, its discretized-logistic likelihood, training and export."""
