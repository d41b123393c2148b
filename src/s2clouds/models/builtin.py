"""Registration of the models that ship with s2clouds."""

from __future__ import annotations

from s2clouds.models.physical import MINIMUM_BANDS, PhysicalModel
from s2clouds.models.registry import ModelInfo, register

register(
    ModelInfo(
        name="physical",
        factory=PhysicalModel.for_bands,
        bands=MINIMUM_BANDS,
        description=(
            "SEN12MS cloud/shadow scores (Schmitt et al. 2019): spectral tests + shadow "
            "projection along the sun azimuth; uses B01, B10, B11, B12 when present"
        ),
        notes=(
            "thick and thin cloud are not separated: all cloud is reported as thick cloud",
            "without SWIR (B11), snow and bright soil can be mistaken for cloud",
        ),
    )
)
