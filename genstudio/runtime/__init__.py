"""The runtime layer: providers, sessions, model manifests, the registry and safe loading. No Qt, no torch."""
