"""The real images kept out of training, shared by the training recipe
(scripts/build_pixel_models.py) and the accuracy benchmark (benchmarks/accuracy.py), and the
surface each real image shows (the benchmark reports per surface).

Names are those of ``../shared/data/real``: SEN12MS-CR pair folders (every 5th usable pair in
sorted order is chosen by :func:`is_held_out`), time-series dates (every 3rd), On Cloud N
chips, DSen2 crops, S2-100K patches, Mojave images (every 4th) and EuroSAT patches of the
pool (every 4th). Whole sources are held out too (:data:`HELD_OUT_SOURCES`): no image of them
is trained on, so the benchmark measures them as a user's new data.
"""

from __future__ import annotations

import zlib

HOLDOUT: dict[str, list[str]] = {
    "oncloudn": ["oncloudn_chip3"],
    "dsen2": ["S2B_MSIL1C_20200708_T39RVJ"],
    "s2_100k": ["patch_759128", "patch_33188", "patch_445"],
}
#: for the larger sets: a name is held out when its CRC-32 falls in 1 of this many buckets
EVERY = {"pairs": 5, "series": 3, "mojave": 4, "eurosat": 4}
#: sources never trained on, whole (pool/ folders): floods in India, Spain and the USA;
#: BigEarthNet L2A patches (farmland, forest, snow-covered Finland); the extra SEN12MS-CR patches
HELD_OUT_SOURCES = ("sen1floods11", "bigearthnet_s2", "sen12mscr_extra")


def is_held_out(kind: str, name: str) -> bool:
    """True when the image ``name`` of the set ``kind`` must not be trained on."""
    if kind in HELD_OUT_SOURCES:
        return True
    if kind in HOLDOUT:
        return name in HOLDOUT[kind]
    return zlib.crc32(name.encode()) % EVERY[kind] == 0


#: EuroSAT land-cover class -> surface of the benchmark's rows
EUROSAT_SURFACE = {
    "AnnualCrop": "farmland",
    "PermanentCrop": "farmland",
    "Pasture": "farmland",
    "HerbaceousVegetation": "farmland",
    "Forest": "forest",
    "SeaLake": "sea and water",
    "River": "sea and water",
    "Residential": "city",
    "Industrial": "city",
    "Highway": "city",
}
#: S2-100K patch -> surface (from ../shared/data/real/README.md)
S2_100K_SURFACE = {
    "patch_25630": "snow and ice",
    "patch_770287": "snow and ice",
    "patch_286743": "snow and ice",
    "patch_70541": "desert",
    "patch_759128": "desert",
    "patch_58000": "desert",
    "patch_33188": "desert",
    "patch_252161": "desert",
    "patch_445": "snow and ice",
}
#: DSen2 crop -> surface
DSEN2_SURFACE = {
    "S2A_MSIL1C_20170527_T33UUB": "farmland",
    "S2B_MSIL1C_20171022_T49JGM": "desert",  # salt flats, bright sand and a shallow coast
    "S2B_MSIL1C_20200708_T39RVJ": "city",  # a bright desert city on the coast
}


def surface_of(kind: str, name: str) -> str:
    """The surface the real image ``name`` of the set ``kind`` shows ("mixed" when unknown)."""
    if kind == "eurosat":
        return EUROSAT_SURFACE.get(name.split("_")[0], "mixed")
    if kind == "s2_100k":
        return S2_100K_SURFACE.get(name, "mixed")
    if kind == "dsen2":
        return DSEN2_SURFACE.get(name, "mixed")
    if kind == "mojave":
        return "desert"
    if kind == "bigearthnet_s2":  # winter Finland under snow; else the patch's land cover
        return {
            "S2B_MSIL2A_20180204T94161_57_38": "snow and ice",
            "S2B_MSIL2A_20170924T93020_69_24": "forest",
        }.get(name, "farmland")
    if kind == "sen1floods11":
        return "farmland"
    return "mixed"
