"""Cloud models: a common protocol, a registry, and the built-in models."""
