"""Every label scheme s2clouds knows, as tables.

Sources: the CloudSEN12 high-quality dataset card (CloudSEN12, KappaMask, Sen2Cor, Fmask,
s2cloudless, CD-FCNN and QA60 columns), the Sentinel-2 Cloud Mask Catalogue (one-hot clear /
cloud / shadow), the spatio-temporal cloud dataset (6 classes), ukis-csmask (0 background,
1 cloud, 2 shadow) and plain binary cloud masks.
"""

from __future__ import annotations

from s2clouds.errors import LabelSchemeError
from s2clouds.labels.schemes import (
    CANONICAL_CLASSES,
    CLEAR,
    CLOUD_SHADOW,
    NODATA,
    THICK_CLOUD,
    THIN_CLOUD,
    LabelScheme,
)

_IDENTITY = {c: c for c in CANONICAL_CLASSES}
_MERGED_CLOUD = (
    "thick and thin cloud are one class: canonical thin cloud becomes this scheme's cloud, "
    "and its cloud comes back as thick cloud"
)
_NO_SHADOW = "no shadow class: canonical cloud shadow becomes clear"

CANONICAL = LabelScheme(
    name="canonical",
    title="s2clouds canonical",
    classes=dict(CANONICAL_CLASSES) | {NODATA: "no data"},
    to_canonical=_IDENTITY | {NODATA: NODATA},
    from_canonical=_IDENTITY,
    nodata=NODATA,
    source="s2clouds",
)

#: CloudSEN12's padding value, as uint8 and as the card's int8
CLOUDSEN12_PAD, CLOUDSEN12_PAD_INT8 = 255, -1

CLOUDSEN12 = LabelScheme(
    name="cloudsen12",
    title="CloudSEN12 (manual_hq, manual_sc)",
    classes=dict(CANONICAL_CLASSES),
    # the 3-pixel pad around the 509 x 509 data is stored as 255 (-1 when read as int8)
    to_canonical={**_IDENTITY, CLOUDSEN12_PAD: NODATA, CLOUDSEN12_PAD_INT8: NODATA},
    from_canonical=_IDENTITY,
    nodata=CLOUDSEN12_PAD,
    source="CloudSEN12 high-quality dataset card, label table",
    aliases=("manual_hq", "manual_sc"),
)

KAPPAMASK = LabelScheme(
    name="kappamask",
    title="KappaMask",
    classes={
        0: "missing",
        1: "clear",
        2: "cloud shadow",
        3: "semi-transparent cloud",
        4: "cloud",
        5: "undefined",
    },
    to_canonical={0: NODATA, 1: CLEAR, 2: CLOUD_SHADOW, 3: THIN_CLOUD, 4: THICK_CLOUD, 5: NODATA},
    from_canonical={CLEAR: 1, THICK_CLOUD: 4, THIN_CLOUD: 3, CLOUD_SHADOW: 2},
    nodata=0,
    lossy=("'undefined' (5) becomes no data",),
    source="CloudSEN12 card; KappaMask (Domnich et al. 2021)",
    aliases=("kappamask_l1c", "kappamask_l2a"),
)

SEN2COR = LabelScheme(
    name="sen2cor",
    title="Sen2Cor scene classification (SCL)",
    classes={
        0: "no data",
        1: "saturated or defective",
        2: "dark area pixels",
        3: "cloud shadows",
        4: "vegetation",
        5: "bare soils",
        6: "water",
        7: "unclassified",
        8: "cloud medium probability",
        9: "cloud high probability",
        10: "thin cirrus",
        11: "snow",
    },
    to_canonical={
        0: NODATA,
        1: NODATA,
        2: CLEAR,
        3: CLOUD_SHADOW,
        4: CLEAR,
        5: CLEAR,
        6: CLEAR,
        7: NODATA,
        8: THICK_CLOUD,
        9: THICK_CLOUD,
        10: THIN_CLOUD,
        11: CLEAR,
    },
    from_canonical={CLEAR: 4, THICK_CLOUD: 9, THIN_CLOUD: 10, CLOUD_SHADOW: 3},
    nodata=0,
    lossy=(
        "clear surfaces (2, 4, 5, 6, 11) merge into clear; canonical clear comes back as 4 vegetation",
        "cloud medium and high probability (8, 9) merge into thick cloud",
        "saturated (1) and unclassified (7) become no data",
    ),
    source="CloudSEN12 card; Sen2Cor product specification",
    aliases=("scl",),
)

FMASK = LabelScheme(
    name="fmask",
    title="Fmask 4.0",
    classes={
        0: "clear land",
        1: "clear water",
        2: "cloud shadow",
        3: "snow",
        4: "cloud",
        255: "no data",
    },
    to_canonical={0: CLEAR, 1: CLEAR, 2: CLOUD_SHADOW, 3: CLEAR, 4: THICK_CLOUD, 255: NODATA},
    from_canonical={CLEAR: 0, THICK_CLOUD: 4, THIN_CLOUD: 4, CLOUD_SHADOW: 2},
    nodata=255,
    lossy=(
        _MERGED_CLOUD,
        "land, water and snow merge into clear; canonical clear comes back as 0 clear land",
    ),
    source="CloudSEN12 card; Fmask 4.0 (Qiu et al. 2019)",
)

S2CLOUDLESS = LabelScheme(
    name="s2cloudless",
    title="s2cloudless",
    classes={0: "clear", 1: "cloud"},
    to_canonical={0: CLEAR, 1: THICK_CLOUD},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 1, CLOUD_SHADOW: 0},
    lossy=(_MERGED_CLOUD, _NO_SHADOW),
    source="CloudSEN12 card; s2cloudless (Zupanc 2017)",
)

CD_FCNN = LabelScheme(
    name="cd_fcnn",
    title="CD-FCNN (Lopez-Puigdollers et al. 2021)",
    classes={0: "clear", 1: "cloud"},
    to_canonical={0: CLEAR, 1: THICK_CLOUD},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 1, CLOUD_SHADOW: 0},
    lossy=(_MERGED_CLOUD, _NO_SHADOW),
    source="CloudSEN12 card",
    aliases=("cd_fcnn_rgbi", "cd_fcnn_rgbi_swir", "cdfcnn"),
)

QA60 = LabelScheme(
    name="qa60",
    title="Sentinel-2 L1C QA60 bit flags",
    classes={
        0: "clear",
        1024: "opaque cloud (bit 10)",
        2048: "cirrus cloud (bit 11)",
        3072: "opaque and cirrus",
    },
    to_canonical={0: CLEAR, 1024: THICK_CLOUD, 2048: THIN_CLOUD, 3072: THICK_CLOUD},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1024, THIN_CLOUD: 2048, CLOUD_SHADOW: 0},
    lossy=(_NO_SHADOW, "both bits set (3072) counts as opaque cloud"),
    source="CloudSEN12 card; Sentinel-2 L1C product specification",
)

CLOUD_MASK_CATALOGUE = LabelScheme(
    name="cmc",
    title="Sentinel-2 Cloud Mask Catalogue (one-hot CLEAR, CLOUD, CLOUD_SHADOW, as 0/1/2)",
    classes={0: "clear", 1: "cloud", 2: "cloud shadow", 255: "no data"},
    to_canonical={0: CLEAR, 1: THICK_CLOUD, 2: CLOUD_SHADOW, 255: NODATA},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 1, CLOUD_SHADOW: 2},
    nodata=255,
    lossy=(_MERGED_CLOUD,),
    source="Sentinel-2 Cloud Mask Catalogue (Francis et al. 2020); decode the one-hot masks with decode_one_hot",
    aliases=("catalogue", "cloud_mask_catalogue"),
)

SPATIOTEMPORAL = LabelScheme(
    name="spatiotemporal",
    title="Spatio-temporal S2 cloud dataset (6 classes)",
    classes={
        0: "clear",
        1: "opaque cloud",
        2: "thin cloud",
        3: "haze",
        4: "cloud shadow",
        5: "snow",
    },
    to_canonical={
        0: CLEAR,
        1: THICK_CLOUD,
        2: THIN_CLOUD,
        3: THIN_CLOUD,
        4: CLOUD_SHADOW,
        5: CLEAR,
    },
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 2, CLOUD_SHADOW: 4},
    lossy=("haze (3) merges into thin cloud", "snow (5) merges into clear"),
    source="Spatio-temporal cloud dataset card",
    aliases=("temporal",),
)

UKIS_CSMASK = LabelScheme(
    name="ukis_csmask",
    title="ukis-csmask (0 background, 1 cloud, 2 cloud shadow)",
    classes={0: "background", 1: "cloud", 2: "cloud shadow", 255: "no data"},
    to_canonical={0: CLEAR, 1: THICK_CLOUD, 2: CLOUD_SHADOW, 255: NODATA},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 1, CLOUD_SHADOW: 2},
    nodata=255,
    lossy=(_MERGED_CLOUD,),
    source="ukis-csmask 1.0 documentation",
    aliases=("ukis", "csmask"),
)

BINARY_CLOUD = LabelScheme(
    name="binary",
    title="Binary cloud mask (0 not cloud, 1 cloud; e.g. the On Cloud N labels)",
    classes={0: "not cloud", 1: "cloud", 255: "no data"},
    to_canonical={0: CLEAR, 1: THICK_CLOUD, 255: NODATA},
    from_canonical={CLEAR: 0, THICK_CLOUD: 1, THIN_CLOUD: 1, CLOUD_SHADOW: 0},
    nodata=255,
    lossy=(_MERGED_CLOUD, _NO_SHADOW),
    source="generic",
    aliases=("binary_cloud", "oncloudn"),
)

SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in (
        CANONICAL,
        CLOUDSEN12,
        KAPPAMASK,
        SEN2COR,
        FMASK,
        S2CLOUDLESS,
        CD_FCNN,
        QA60,
        CLOUD_MASK_CATALOGUE,
        SPATIOTEMPORAL,
        UKIS_CSMASK,
        BINARY_CLOUD,
    )
}
_LOOKUP = {alias: s.name for s in SCHEMES.values() for alias in (s.name, *s.aliases)}


def get_scheme(name: str | LabelScheme) -> LabelScheme:
    """Look up a scheme by name or alias (case-insensitive, '-' and '_' alike)."""
    if isinstance(name, LabelScheme):
        return name
    key = name.strip().lower().replace("-", "_")
    if key not in _LOOKUP:
        raise LabelSchemeError(
            f"unknown label scheme {name!r}; known schemes: {', '.join(SCHEMES)} "
            "(run 's2clouds labels' to see them)"
        )
    return SCHEMES[_LOOKUP[key]]
