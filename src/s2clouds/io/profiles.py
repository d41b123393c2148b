"""Named write profiles (rasterio creation options)."""

from __future__ import annotations

#: Intermediate tiled GeoTIFF written window by window before the COG copy.
TILED_GTIFF = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "deflate",
    "BIGTIFF": "IF_SAFER",
}

#: Cloud-Optimized GeoTIFF for class masks: mode overviews keep class values exact.
COG_MASK = {
    "driver": "COG",
    "compress": "deflate",
    "blocksize": 512,
    "overview_resampling": "mode",
    "BIGTIFF": "IF_SAFER",
}

#: Cloud-Optimized GeoTIFF for continuous layers (probabilities in percent).
COG_CONTINUOUS = {**COG_MASK, "overview_resampling": "average"}
