"""Real clouds moved onto other surfaces: training images with exact thick, thin and shadow
labels for surfaces that no real cloudy image here shows (sea, snow, desert, city).

A **cloud layer** is cut from a real cloudy/clear pair (SEN12MS-CR): where the change
labeller (:mod:`s2clouds.labels.change`) finds cloud, its opacity ``a`` (0 clear - 1 opaque,
from the rise of the visible mean) and the cloud's own reflectance ``K`` per band, solved from
``cloudy = (1 - a) x clear + a x K`` where the cloud is thick enough to solve it, else the
layer's median thick-cloud spectrum. The cirrus band B10 is kept as the rise the pair shows
(the surface barely reaches B10 through the water vapour above it).

:func:`composite_layer` lays a layer over a clear real image ``S`` of another surface:

* shadow first: the layer's opacity shifted away from the sun by ``height x tan(zenith)``
  darkens the surface part of ``S`` by ``1 - s x a_shadow x (1 - diffuse)``, where
  ``diffuse`` (the sky light that still reaches a shaded pixel) is highest in blue;
* then the cloud: ``(1 - a) x S + a x K`` (with ``K`` made L2A-like over L2A surfaces), and
  the B10 rise added on images that have B10;
* labels from the construction: thick where ``a >= 0.5``, thin where ``0.3 <= a < 0.5`` (or
  cirrus only, on images with B10), both only where the cloud changes the surface as much as
  the change labeller asks of a real cloud (:func:`visible_cloud`); shadow where
  ``a_shadow >= 0.5`` under no cloud and the darkening is as visible as the labeller asks of
  a real shadow (:func:`visible_shadow`); clear where neither reaches 0.03; in-between
  pixels, cloud or shadow that cannot be seen and pixels the labeller could not explain are
  ignored (255).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from s2clouds.bands import canonical_band_names
from s2clouds.labels import NODATA
from s2clouds.labels.schemes import CLEAR
from s2clouds.labels.schemes import CLOUD_SHADOW as SHADOW
from s2clouds.labels.schemes import THICK_CLOUD as THICK
from s2clouds.labels.schemes import THIN_CLOUD as THIN
from s2clouds.train.surfaces import PATH_REFLECTANCE, Labelled, l2a_like

#: opacity above which a composited cloud is labelled thick (the change labeller's rule)
THICK_OPACITY = 0.5
#: opacity from which a composited cloud is labelled thin: fainter haze is ignored, as a
#: veil that a bright roof or bare ground could equally explain teaches false cloud there
THIN_OPACITY = 0.3
#: a shaded pixel whose NDWI exceeds this looks like water, not like shadow
WATER_NDWI = 0.0
#: rise of B11 that makes a cloud over snow visible (snow is dark in SWIR, cloud is not)
SWIR_RISE = 0.05
#: below this opacity (cloud and shadow) a pixel is labelled clear
CLEAR_OPACITY = 0.03
#: shaded share from which a pixel is labelled shadow
SHADOW_LEVEL = 0.5
#: a cirrus-only pixel (no visible rise) is thin cloud when B10 rises by at least this
CIRRUS_RISE = 0.006
#: share of sky light that still reaches a shaded pixel, per band (blue is scattered most)
DIFFUSE = {
    "B01": 0.45,
    "B02": 0.4,
    "B03": 0.3,
    "B04": 0.25,
    "B05": 0.2,
    "B06": 0.17,
    "B07": 0.15,
    "B08": 0.14,
    "B8A": 0.13,
    "B09": 0.13,
    "B10": 1.0,
    "B11": 0.1,
    "B12": 0.08,
}
#: a pair whose cloud (opacity of at least THIN_OPACITY) covers less than this gives no layer
MIN_CLOUD_SHARE = 0.01
#: opacity from which a pixel's own cloud reflectance is solved (below: the layer median)
SOLVE_OPACITY = 0.5


@dataclass(frozen=True)
class CloudLayer:
    """A real cloud layer: ``opacity`` (H, W) float32 0-1 (NaN: unknown, not used for
    labels), ``reflectance`` (C, H, W) float32 of the cloud itself (TOA), ``cirrus`` (H, W)
    float32 rise of B10 (0 when the pair has no B10), in ``bands`` order; ``name`` for
    reports."""

    opacity: np.ndarray
    reflectance: np.ndarray
    cirrus: np.ndarray
    bands: tuple[str, ...]
    name: str

    @property
    def cloud_share(self) -> float:
        """Share of pixels with opacity of at least :data:`THIN_OPACITY`."""
        return float(np.mean(np.nan_to_num(self.opacity) >= THIN_OPACITY))


def layer_from_pair(
    cloudy: np.ndarray, clear: np.ndarray, bands: Sequence[str], name: str = ""
) -> CloudLayer | None:
    """The cloud layer of a co-registered pair (each (C, H, W) TOA reflectance in ``bands``
    order), or None when the labeller cannot match the pair or it holds almost no cloud."""
    from s2clouds.labels.change import change_labels

    names = canonical_band_names(tuple(bands))
    labels = change_labels(cloudy, clear, names)
    if not labels.usable:
        return None
    matched = cloudy - labels.offsets[:, None, None]
    cloud = np.isfinite(labels.opacity)
    opacity = np.where(cloud, labels.opacity, 0.0).astype(np.float32)
    # unexplained change that is not cloud (surface change, snow, edges) stays unknown
    unknown = (labels.mask == NODATA) & ~cloud
    opacity[unknown] = np.nan
    cirrus = np.zeros(opacity.shape, np.float32)
    if "B10" in names:
        b10 = names.index("B10")
        cirrus = np.where(cloud, np.maximum(matched[b10] - clear[b10], 0.0), 0.0)
    layer = CloudLayer(
        opacity, cloud_reflectance(matched, clear, opacity), cirrus.astype(np.float32), names, name
    )
    return layer if layer.cloud_share >= MIN_CLOUD_SHARE else None


def layers_from_pairs(root: Path, wanted: Callable[[str], bool]) -> list[CloudLayer]:
    """The cloud layers of the SEN12MS-CR pair folders (``<name>/cloudy.tif`` and
    ``clear.tif``) under ``root`` whose name is ``wanted``, in sorted order."""
    from s2clouds.datasets.sen12mscr import read_reflectance

    layers = []
    for folder in sorted(Path(root).iterdir()):
        if not (folder / "cloudy.tif").is_file() or not wanted(folder.name):
            continue
        cloudy, bands, _, _ = read_reflectance(folder / "cloudy.tif")
        clear, _, _, _ = read_reflectance(folder / "clear.tif")
        layer = layer_from_pair(cloudy, clear, bands, folder.name)
        if layer is not None:
            layers.append(layer)
    return layers


def cloud_reflectance(cloudy: np.ndarray, clear: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """(C, H, W) float32 reflectance of the cloud itself: ``clear + (cloudy - clear) / a``
    where the opacity ``a`` (H, W) is at least :data:`SOLVE_OPACITY`, the median of those
    pixels elsewhere (a bright generic cloud when none is that thick)."""
    solvable = np.nan_to_num(opacity) >= SOLVE_OPACITY
    with np.errstate(invalid="ignore", divide="ignore"):
        solved = clear + (cloudy - clear) / np.where(solvable, opacity, 1.0)
    solved = np.clip(np.nan_to_num(solved), 0.0, 1.5)
    if solvable.sum() >= 20:
        median = np.median(solved[:, solvable], axis=1)
    else:
        median = np.full(cloudy.shape[0], 0.45, np.float32)
    out = np.where(solvable[None], solved, median[:, None, None])
    return out.astype(np.float32)


@dataclass(frozen=True)
class Geometry:
    """Where a layer's shadow falls: sun azimuth (degrees clockwise from north), sun zenith
    (degrees), cloud height (m), pixel size (m) and the share of direct light the cloud
    blocks (``darkness``, 0-1)."""

    azimuth: float
    zenith: float
    height: float
    pixel_size: float = 10.0
    darkness: float = 0.85

    @classmethod
    def random(cls, rng: np.random.Generator, pixel_size: float = 10.0) -> Geometry:
        """A plausible geometry: any azimuth, sun zenith 20-65 degrees, cloud base 300-2500
        m, 75-95 % of direct light blocked."""
        return cls(
            azimuth=float(rng.uniform(0, 360)),
            zenith=float(rng.uniform(20, 65)),
            height=float(rng.uniform(300, 2500)),
            pixel_size=pixel_size,
            darkness=float(rng.uniform(0.75, 0.95)),
        )

    def shadow_offset(self) -> tuple[int, int]:
        """(rows, cols) from a cloud to its shadow: away from the sun, north up."""
        reach = self.height * np.tan(np.radians(self.zenith)) / self.pixel_size
        away = np.radians(self.azimuth + 180.0)
        return int(round(-reach * np.cos(away))), int(round(reach * np.sin(away)))


def shadow_of(opacity: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(H, W) float32 shaded share: the opacity moved by the shadow offset; NaN where the
    casting pixel is unknown or lies beyond the layer's edge."""
    rows, cols = geometry.shadow_offset()
    shade = ndimage.shift(opacity, (rows, cols), order=0, cval=np.nan, prefilter=False)
    return shade.astype(np.float32)


def composite_layer(
    surface: Labelled, layer: CloudLayer, geometry: Geometry, rng: np.random.Generator
) -> Labelled | None:
    """``surface`` (a clear real image, its target all clear or ignore) under ``layer``, cut
    at a random window of the surface's size (the surface is cropped to the layer's size when
    larger); None when the layer lacks one of the surface's bands. Labels as in the module
    docstring; pixels the surface itself does not label stay ignored."""
    if not set(surface.bands) <= set(layer.bands):
        return None
    h = min(surface.image.shape[1], layer.opacity.shape[0])
    w = min(surface.image.shape[2], layer.opacity.shape[1])
    sy = int(rng.integers(0, surface.image.shape[1] - h + 1))
    sx = int(rng.integers(0, surface.image.shape[2] - w + 1))
    image = surface.image[:, sy : sy + h, sx : sx + w].astype(np.float32, copy=True)
    base_target = surface.target[sy : sy + h, sx : sx + w]
    shade_full = shadow_of(layer.opacity, geometry)
    ly = int(rng.integers(0, layer.opacity.shape[0] - h + 1))
    lx = int(rng.integers(0, layer.opacity.shape[1] - w + 1))
    window = (slice(ly, ly + h), slice(lx, lx + w))
    opacity = layer.opacity[window]
    shade = shade_full[window]
    idx = [layer.bands.index(b) for b in surface.bands]
    cloud = layer.reflectance[idx][(slice(None), *window)]
    if surface.level == "L2A":
        cloud = l2a_like(cloud, surface.bands, 1.0)
    path = np.zeros(len(surface.bands), np.float32)
    if surface.level == "L1C":
        path = np.asarray([PATH_REFLECTANCE.get(b, 0.0) for b in surface.bands], np.float32)
    diffuse = np.asarray([DIFFUSE.get(b, 0.2) for b in surface.bands], np.float32)
    dim = 1.0 - geometry.darkness * np.nan_to_num(shade)[None] * (1.0 - diffuse[:, None, None])
    lit = image
    image = path[:, None, None] + (image - path[:, None, None]) * dim
    shadow_seen = visible_shadow(lit, image, surface.bands)
    a = np.nan_to_num(opacity)[None]
    rise = a * (cloud - image)
    image = image + rise
    cirrus = layer.cirrus[window]
    if "B10" in surface.bands:
        image[surface.bands.index("B10")] += cirrus
    target = composite_target(
        opacity,
        shade,
        cirrus if "B10" in surface.bands else None,
        visible_cloud(rise, surface.bands),
        shadow_seen,
    )
    target[base_target == NODATA] = NODATA
    name = f"{surface.name}+{layer.name}"
    return Labelled(
        image.astype(np.float32), surface.bands, target, surface.level, name, surface.weight
    )


def visible_cloud(rise: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(H, W) bool: where the cloud changes the surface as much as the change labeller asks
    of a real cloud (:class:`~s2clouds.labels.change.ChangeRules`: B02 up by 0.05 and B04 by
    0.04), or raises SWIR (B11) by 0.05 (cloud over snow, which is darker there). A thin veil
    over a bright surface that changes neither is no cloud anyone could label."""
    from s2clouds.labels.change import ChangeRules

    rules = ChangeRules()
    names = tuple(bands)
    seen = (rise[names.index("B02")] > rules.blue_rise) & (
        rise[names.index("B04")] > rules.red_rise
    )
    if "B11" in names:
        seen |= rise[names.index("B11")] > SWIR_RISE
    return seen


def visible_shadow(lit: np.ndarray, shaded: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(H, W) bool: where a shadow darkens the surface ``lit`` (C, H, W) to ``shaded`` as
    much as the change labeller asks of a real shadow (B08 down by 0.04 to under 0.8 x its
    lit value, and B11 down by 0.03 where present) and the shaded pixel does not look like
    water (NDWI under :data:`WATER_NDWI`). Shadow on dark water or asphalt, which no one
    could see, and shadow on bright sand that looks like turbid water are not labelled."""
    from s2clouds.labels.change import ChangeRules

    rules = ChangeRules()
    names = tuple(bands)
    nir = names.index("B08")
    seen = (lit[nir] - shaded[nir] > rules.shadow_nir_drop) & (
        shaded[nir] < rules.shadow_nir_ratio * lit[nir]
    )
    if "B11" in names:
        swir = names.index("B11")
        seen &= lit[swir] - shaded[swir] > rules.shadow_swir_drop
    # sky light keeps a shadow bluish: over bright sand it looks like turbid water (NDWI
    # above 0), which real shadows are not called by people; such pixels are left unlabelled
    green = shaded[names.index("B03")]
    with np.errstate(invalid="ignore", divide="ignore"):
        seen &= (green - shaded[nir]) / np.maximum(green + shaded[nir], 1e-6) < WATER_NDWI
    return seen


def composite_target(
    opacity: np.ndarray,
    shade: np.ndarray,
    cirrus: np.ndarray | None,
    seen: np.ndarray | None = None,
    shadow_seen: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) uint8 canonical labels of a composite from the cloud ``opacity`` (NaN
    unknown), the shaded share (NaN unknown), on images with B10 the cirrus rise, where the
    cloud is ``seen`` (:func:`visible_cloud`) and where the shadow is (:func:`visible_shadow`;
    None: everywhere). Cloud (not cirrus) and shadow that cannot be seen are ignored."""
    a = np.nan_to_num(opacity, nan=-1.0)
    target = np.full(a.shape, NODATA, np.uint8)
    # NaN shade (a casting pixel beyond the layer's edge) compares False: never clear
    target[(a >= 0) & (a < CLEAR_OPACITY) & (shade < CLEAR_OPACITY)] = CLEAR
    shadow = (a >= 0) & (a < CLEAR_OPACITY) & (shade >= SHADOW_LEVEL)
    if shadow_seen is not None:
        shadow &= shadow_seen
    target[shadow] = SHADOW
    thin = (a >= THIN_OPACITY) & (a < THICK_OPACITY)
    if cirrus is not None:
        thin |= (a >= 0) & (a < THICK_OPACITY) & (cirrus >= CIRRUS_RISE)
        # a cirrus rise too faint to call thin is no clear sky either
        target[(target == CLEAR) & (cirrus >= CIRRUS_RISE / 2)] = NODATA
    thick = a >= THICK_OPACITY
    if seen is not None:
        hidden = (thin | thick) & ~seen
        if cirrus is not None:
            hidden &= cirrus < CIRRUS_RISE
        thin &= ~hidden
        thick &= ~hidden
    target[thin] = THIN
    target[thick] = THICK
    return target
