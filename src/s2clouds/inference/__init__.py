"""Tiled inference: tile grids, feathered blending, whole-scene prediction."""
