"""SEN12MS land-cover layers as tables: stored value -> class name, one table per MODIS layer.

The SEN12MS ``lc`` patches hold four bands of the MODIS MCD12Q1 V6 land cover (2016, upsampled
to 10 m): IGBP, LCCS land cover, LCCS land use and LCCS surface hydrology, in that order.
Values and names come from Table 2 of Schmitt et al. (2019), "SEN12MS - a curated dataset of
georeferenced multi-spectral Sentinel-1/2 imagery for deep learning and data fusion"; no data
is 255 in every layer. The paper gives no simplified IGBP scheme; the only merge it describes
is the one used to evaluate its LCCS land-use maps (:data:`LCCS_LAND_USE_EVALUATION_MERGE`).

These layers are land cover, not cloud labels, so they are not :class:`LabelScheme` objects
(which map to the canonical cloud classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from s2clouds.errors import LabelSchemeError

LANDCOVER_NODATA = 255


@dataclass(frozen=True)
class LandCoverLayer:
    """One band of the SEN12MS ``lc`` GeoTIFFs.

    ``band`` is the 1-based band number in the GeoTIFF; ``classes`` maps each stored value to
    its class name; ``nodata`` is the value of pixels without a class.
    """

    name: str
    title: str
    band: int
    classes: Mapping[int, str]
    nodata: int = LANDCOVER_NODATA
    source: str = "SEN12MS paper (Schmitt et al. 2019), Table 2"
    aliases: tuple[str, ...] = field(default_factory=tuple)


IGBP = LandCoverLayer(
    name="igbp",
    title="MODIS IGBP land cover (17 classes)",
    band=1,
    classes={
        1: "Evergreen Needleleaf Forests",
        2: "Evergreen Broadleaf Forests",
        3: "Deciduous Needleleaf Forests",
        4: "Deciduous Broadleaf Forests",
        5: "Mixed Forests",
        6: "Closed (Dense) Shrublands",
        7: "Open (Sparse) Shrublands",
        8: "Woody Savannas",
        9: "Savannas",
        10: "Grasslands",
        11: "Permanent Wetlands",
        12: "Croplands",
        13: "Urban and Built-Up Lands",
        14: "Cropland/Natural Vegetation Mosaics",
        15: "Permanent Snow and Ice",
        16: "Barren",
        17: "Water Bodies",
    },
)

LCCS_LAND_COVER = LandCoverLayer(
    name="lccs_lc",
    title="MODIS LCCS land cover",
    band=2,
    classes={
        1: "Barren",
        2: "Permanent Snow and Ice",
        3: "Water Bodies",
        11: "Evergreen Needleleaf Forests",
        12: "Evergreen Broadleaf Forests",
        13: "Deciduous Needleleaf Forests",
        14: "Deciduous Broadleaf Forests",
        15: "Mixed Broadleaf/Needleleaf Forests",
        16: "Mixed Broadleaf Evergreen/Deciduous Forests",
        21: "Open Forests",
        22: "Sparse Forests",
        31: "Dense Herbaceous",
        32: "Sparse Herbaceous",
        41: "Closed (Dense) Shrublands",
        42: "Shrubland/Grassland Mosaics",
        43: "Open (Sparse) Shrublands",
    },
    aliases=("lccs_land_cover", "lccs1"),
)

LCCS_LAND_USE = LandCoverLayer(
    name="lccs_lu",
    title="MODIS LCCS land use",
    band=3,
    classes={
        1: "Barren",
        2: "Permanent Snow and Ice",
        3: "Water Bodies",
        9: "Urban and Built-Up Lands",
        10: "Dense Forests",
        20: "Open Forests",
        25: "Forest/Cropland Mosaics",
        30: "Natural Herbaceous",
        35: "Natural Herbaceous/Croplands Mosaics",
        36: "Herbaceous Croplands",
        40: "Shrublands",
    },
    aliases=("lccs_land_use", "lccs2"),
)

LCCS_SURFACE_HYDROLOGY = LandCoverLayer(
    name="lccs_sh",
    title="MODIS LCCS surface hydrology",
    band=4,
    classes={
        1: "Barren",
        2: "Permanent Snow and Ice",
        3: "Water Bodies",
        10: "Dense Forests",
        20: "Open Forests",
        27: "Woody Wetlands",
        30: "Grasslands",
        40: "Shrublands",
        50: "Herbaceous Wetlands",
        51: "Tundra",
    },
    aliases=("lccs_surface_hydrology", "lccs3"),
)

#: every layer by name, in GeoTIFF band order
LANDCOVER_LAYERS: dict[str, LandCoverLayer] = {
    layer.name: layer for layer in (IGBP, LCCS_LAND_COVER, LCCS_LAND_USE, LCCS_SURFACE_HYDROLOGY)
}
_LOOKUP = {
    alias: lay.name for lay in LANDCOVER_LAYERS.values() for alias in (lay.name, *lay.aliases)
}

#: The merge used for the paper's LCCS land-use accuracy figures (Section 5): Open Forests (20)
#: and Forest/Cropland Mosaics (25) become one Open Forests class; Natural Herbaceous (30),
#: Herbaceous Croplands (36) and Natural Herbaceous/Croplands Mosaics (35) become Herbaceous.
#: Values not listed keep their class.
LCCS_LAND_USE_EVALUATION_MERGE: dict[int, int] = {25: 20, 35: 30, 36: 30}
LCCS_LAND_USE_EVALUATION_NAMES: dict[int, str] = {20: "Open Forests", 30: "Herbaceous"}


def get_landcover_layer(name: str | LandCoverLayer) -> LandCoverLayer:
    """Look up a land-cover layer by name or alias (case-insensitive, '-' and '_' alike)."""
    if isinstance(name, LandCoverLayer):
        return name
    key = name.strip().lower().replace("-", "_")
    if key not in _LOOKUP:
        raise LabelSchemeError(
            f"unknown SEN12MS land-cover layer {name!r}; use one of {', '.join(LANDCOVER_LAYERS)}"
        )
    return LANDCOVER_LAYERS[_LOOKUP[key]]
