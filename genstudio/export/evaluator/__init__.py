"""The evaluator: small CNN classifiers whose features give FID and whose heads measure class accuracy."""
