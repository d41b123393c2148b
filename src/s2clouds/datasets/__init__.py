"""Readers for the public cloud benchmark datasets (one module per dataset)."""
