"""Label schemes of the field and exact translation between them."""

from s2clouds.labels.catalogue import SCHEMES, get_scheme
from s2clouds.labels.schemes import (
    CANONICAL_CLASSES,
    CANONICAL_COLOURS,
    CLEAR,
    CLOUD_SHADOW,
    NODATA,
    THICK_CLOUD,
    THIN_CLOUD,
    LabelScheme,
)
from s2clouds.labels.translate import (
    correspondence_table,
    decode_one_hot,
    from_canonical,
    to_canonical,
    translate,
)

__all__ = [
    "CANONICAL_CLASSES",
    "CANONICAL_COLOURS",
    "CLEAR",
    "CLOUD_SHADOW",
    "NODATA",
    "SCHEMES",
    "THICK_CLOUD",
    "THIN_CLOUD",
    "LabelScheme",
    "correspondence_table",
    "decode_one_hot",
    "from_canonical",
    "get_scheme",
    "to_canonical",
    "translate",
]
