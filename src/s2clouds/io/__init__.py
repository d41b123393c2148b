"""Reading scenes and writing masks."""
