"""The real images kept out of training, shared by the training recipe
(scripts/build_pixel_models.py) and the accuracy benchmark (benchmarks/accuracy.py).

Names are those of ``../shared/data/real``: SEN12MS-CR pair folders (every 5th usable pair in
sorted order is chosen by :func:`is_held_out`), time-series dates (every 3rd), On Cloud N
chips, DSen2 crops, S2-100K patches and Mojave images (every 4th in sorted order).
"""

from __future__ import annotations

import zlib

HOLDOUT: dict[str, list[str]] = {
    "oncloudn": ["oncloudn_chip3"],
    "dsen2": ["S2B_MSIL1C_20200708_T39RVJ"],
    "s2_100k": ["patch_759128", "patch_33188", "patch_445"],
}
#: for the larger sets: a name is held out when its CRC-32 falls in 1 of this many buckets
EVERY = {"pairs": 5, "series": 3, "mojave": 4}


def is_held_out(kind: str, name: str) -> bool:
    """True when the image ``name`` of the set ``kind`` must not be trained on."""
    if kind in HOLDOUT:
        return name in HOLDOUT[kind]
    return zlib.crc32(name.encode()) % EVERY[kind] == 0
