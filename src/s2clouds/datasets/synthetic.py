"""Physically based synthetic clouds and cloud shadows on real clear-sky surfaces.

Training data with exact labels, made from clear Sentinel-2 surfaces (reflectance, any bands):

* **Cloud opacity** ``alpha`` (H, W) in [0, 1]: fractal noise made by spectral synthesis (white
  noise whose Fourier amplitudes fall as ``(f^2 + f0^2)^(-beta/4)``, ``f0`` = 1 / cloud scale),
  cut at the quantile that gives the drawn coverage (0-80 %) and ramped softly so that cloud
  edges are thin.
* **Mixing**: ``image = (1 - alpha) * shaded + alpha * cloud_spectrum * brightness``, with
  :data:`CLOUD_SPECTRA` the thick-cloud TOA reflectance per band, ``brightness`` drawn in
  0.7-1.2, a mild texture and cloud-top illumination: sides turned from the sun are darker
  and thin edges greyer than cores, as on real cumulus. The cirrus band B10 is bright only for high cloud (and cirrus).
* **Shadow**: the opacity field displaced away from the sun by
  ``height * tan(sun_zenith) / resolution`` pixels (height 500-4000 m) removes a share ``k``
  (0.5-0.8 in NIR) of the direct sunlight: ``shaded = surface * (1 - k * w_band * alpha_shadow)``.
  Diffuse skylight remains, and as skylight is bluer, blue bands darken less (``w_band`` from
  :data:`DIFFUSE_FRACTION`).
* **Labels** (canonical, :class:`LabelRules`): thick cloud where ``alpha > 0.6``, thin cloud
  where ``0.15 < alpha <= 0.6``, cloud shadow where the NIR darkening ``k * alpha_shadow`` is at
  least 0.25 and the pixel is not cloud, clear elsewhere, 255 where the surface is NaN (no
  data). Human annotators draw cloud outlines wider than a physical opacity cut (faint edges
  count as cloud), so a lower ``thin_alpha`` imitates their convention.

Sample kinds: 10 % stay clear, 15 % hold only thin cloud or haze (half of them cirrus, bright
in B10), the rest hold cloud of every opacity. Sign convention of the shadow direction (rows
grow southward, columns eastward, azimuth clockwise from north) is that of
:mod:`s2clouds.models.physical`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import MSI_BAND_NAMES, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample
from s2clouds.errors import BandError, DatasetError
from s2clouds.io.grid import Window
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import read_scene
from s2clouds.labels.schemes import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD

#: Typical top-of-atmosphere reflectance of optically thick cloud per band (unitless).
#: Physics: droplets far larger than the wavelength scatter almost neutrally (Mie), so thick
#: cloud is bright and nearly flat from the blue to the NIR; liquid water and ice absorb in
#: the SWIR (B11 lower, B12 lower still); B09 lies in a water-vapour band but cloud tops sit
#: above most vapour, so it stays moderately bright; B10 (1.375 um) is absorbed by vapour, so
#: only high cloud shows there. Values: the upper quartile of the bright cloud pixels
#: (s2cloudless probability > 0.9 and B02 > 0.4) of the L1C s2cloudless test scene in
#: shared/data/real, rounded; that scene's clouds are low (B10 ~0.05), so the B10 value is
#: for high cloud, from the same reasoning, and is scaled by height (:func:`cirrus_factor`).
CLOUD_SPECTRA: dict[str, float] = {
    "B01": 0.66,
    "B02": 0.65,
    "B03": 0.63,
    "B04": 0.64,
    "B05": 0.64,
    "B06": 0.66,
    "B07": 0.69,
    "B08": 0.66,
    "B8A": 0.70,
    "B09": 0.38,
    "B10": 0.35,
    "B11": 0.43,
    "B12": 0.29,
}

#: Clear-sky diffuse share of the downwelling irradiance per band (sun zenith ~40 degrees,
#: moderate aerosol). Rayleigh scattering grows as wavelength^-4, so skylight is bluish; a
#: cloud blocks the direct beam only, so shadows darken the blue less than the NIR or SWIR.
DIFFUSE_FRACTION: dict[str, float] = {
    "B01": 0.35,
    "B02": 0.30,
    "B03": 0.22,
    "B04": 0.16,
    "B05": 0.14,
    "B06": 0.12,
    "B07": 0.11,
    "B08": 0.10,
    "B8A": 0.10,
    "B09": 0.09,
    "B10": 0.06,
    "B11": 0.05,
    "B12": 0.04,
}

THICK_ALPHA = 0.6  # opacity above which cloud is thick (label 1)
THIN_ALPHA = 0.15  # opacity above which cloud is thin (label 2)
SHADOW_DARKENING = 0.25  # NIR darkening from which a shadow is labelled (label 3)
KIND_PROBABILITIES: dict[str, float] = {"clear": 0.10, "thin": 0.15, "cloudy": 0.75}
COVERAGE_RANGE = (0.02, 0.80)
CLOUD_SCALE_M = (500.0, 6000.0)  # size of the largest cloud structures, metres
ROUGHNESS_RANGE = (2.2, 3.4)  # spectral exponent beta: larger is smoother
RAMP_RANGE = (0.2, 1.2)  # soft edge width, in standard deviations of the noise
THIN_MAX_OPACITY = (0.25, 0.6)
BRIGHTNESS_RANGE = (0.7, 1.2)
SIDE_SHADING_RANGE = (0.0, 0.5)  # how much darker cloud sides turned from the sun are
EDGE_DIMMING_RANGE = (0.0, 0.4)  # how much greyer thin cloud edges are than cloud cores
TEXTURE_RANGE = (0.03, 0.12)
CLOUD_HEIGHT_M = (500.0, 4000.0)
SHADOW_STRENGTH = (0.5, 0.8)  # k: share of the direct (NIR) light a thick cloud removes
SUN_ZENITH_RANGE = (15.0, 65.0)
MAX_SHIFT_PX = 1024  # longer shadow offsets are clipped (their clouds lie far off the crop)


@dataclass(frozen=True)
class LabelRules:
    """Where synthetic opacity and darkening become labels: thick cloud above
    ``thick_alpha``, thin cloud above ``thin_alpha`` (opacity 0-1), shadow from a NIR
    darkening of ``shadow_darkening`` (share of the direct light removed, 0-1)."""

    thick_alpha: float = THICK_ALPHA
    thin_alpha: float = THIN_ALPHA
    shadow_darkening: float = SHADOW_DARKENING

    def __post_init__(self) -> None:
        if not 0.0 <= self.thin_alpha < self.thick_alpha < 1.0:
            raise DatasetError(
                f"label rules need 0 <= thin_alpha < thick_alpha < 1 (opacity never exceeds "
                f"1); got thin_alpha {self.thin_alpha}, thick_alpha {self.thick_alpha}"
            )
        if not 0.0 < self.shadow_darkening <= SHADOW_STRENGTH[1]:
            raise DatasetError(
                f"shadow_darkening must be in (0, {SHADOW_STRENGTH[1]}] (the strongest "
                f"synthetic shadow); got {self.shadow_darkening}"
            )


@dataclass(frozen=True)
class CloudParameters:
    """The random draws of one synthetic sample (all recorded in the sample's ``meta``).

    ``kind``: ``"clear"``, ``"thin"`` (haze or cirrus only) or ``"cloudy"``; ``coverage``:
    share of the cloud field with non-zero opacity; ``cloud_scale_m``: largest structures (m);
    ``roughness``: spectral exponent; ``ramp``: edge softness; ``max_opacity``: opacity cap;
    ``brightness``/``texture``: cloud brightness factor and its relative spatial variation;
    ``cirrus``: factor on the B10 cloud reflectance; ``cloud_height_m``: cloud height (m);
    ``shadow_strength``: ``k``; sun angles in degrees (azimuth clockwise from north);
    ``side_shading``/``edge_dimming``: cloud-top illumination (:func:`cloud_illumination`).
    """

    kind: str
    coverage: float
    cloud_scale_m: float
    roughness: float
    ramp: float
    max_opacity: float
    brightness: float
    texture: float
    cirrus: float
    cloud_height_m: float
    shadow_strength: float
    sun_zenith: float
    sun_azimuth: float
    side_shading: float = 0.0
    edge_dimming: float = 0.0


def cirrus_factor(height_m: float) -> float:
    """Share of :data:`CLOUD_SPECTRA` ``B10`` a cloud at ``height_m`` shows (vapour hides low cloud)."""
    return float(np.clip((height_m - 1000.0) / 3000.0, 0.05, 1.0))


def draw_parameters(
    rng: np.random.Generator, *, sun_zenith: float, sun_azimuth: float
) -> CloudParameters:
    """Draw the cloud, shadow and brightness parameters of one sample (sun angles given)."""
    kinds = list(KIND_PROBABILITIES)
    kind = str(rng.choice(kinds, p=list(KIND_PROBABILITIES.values())))
    height = float(rng.uniform(*CLOUD_HEIGHT_M))
    is_cirrus = bool(rng.random() < 0.5)
    thin_cap = float(rng.uniform(*THIN_MAX_OPACITY))
    return CloudParameters(
        kind=kind,
        coverage=0.0 if kind == "clear" else float(rng.uniform(*COVERAGE_RANGE)),
        cloud_scale_m=float(np.exp(rng.uniform(*np.log(CLOUD_SCALE_M)))),
        roughness=float(rng.uniform(*ROUGHNESS_RANGE)),
        ramp=float(rng.uniform(*RAMP_RANGE)),
        max_opacity=thin_cap if kind == "thin" else 1.0,
        brightness=float(rng.uniform(*BRIGHTNESS_RANGE)),
        texture=float(rng.uniform(*TEXTURE_RANGE)),
        cirrus=1.0 if (kind == "thin" and is_cirrus) else cirrus_factor(height),
        cloud_height_m=height,
        shadow_strength=float(rng.uniform(*SHADOW_STRENGTH)),
        sun_zenith=float(sun_zenith),
        sun_azimuth=float(sun_azimuth),
        side_shading=0.0 if kind == "thin" else float(rng.uniform(*SIDE_SHADING_RANGE)),
        edge_dimming=0.0 if kind == "thin" else float(rng.uniform(*EDGE_DIMMING_RANGE)),
    )


def fractal_noise(
    shape: tuple[int, int], rng: np.random.Generator, *, roughness: float, scale_px: float
) -> np.ndarray:
    """Zero-mean, unit-variance fractal noise (H, W) float32 by spectral synthesis.

    Fourier amplitudes of white noise are shaped as ``(f^2 + f0^2)^(-roughness/4)`` with
    ``f0 = 1 / scale_px`` (cycles per pixel): power-law clouds up to about ``scale_px`` pixels.
    """
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amplitude = (fy**2 + fx**2 + (1.0 / max(scale_px, 1.0)) ** 2) ** (-roughness / 4.0)
    amplitude[0, 0] = 0.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) * amplitude
    field = np.fft.irfft2(spectrum, s=shape)
    spread = field.std()
    return ((field - field.mean()) / (spread if spread > 0 else 1.0)).astype(np.float32)


def cloud_opacity(noise: np.ndarray, params: CloudParameters) -> np.ndarray:
    """Opacity (H, W) float32 in [0, max_opacity]: ``noise`` above its (1 - coverage) quantile."""
    if params.coverage <= 0.0:
        return np.zeros(noise.shape, dtype=np.float32)
    threshold = np.quantile(noise, 1.0 - params.coverage)
    ramped = np.clip((noise - threshold) / params.ramp, 0.0, 1.0)
    return (params.max_opacity * ramped).astype(np.float32)


def shadow_shift(
    height_m: float, sun_zenith: float, sun_azimuth: float, resolution: float
) -> tuple[int, int]:
    """Pixel offset (rows, cols) from a cloud to its shadow, away from the sun.

    Distance ``height_m * tan(sun_zenith) / resolution`` (clipped to :data:`MAX_SHIFT_PX`);
    rows grow southward and columns eastward, azimuth clockwise from north (degrees).
    """
    distance = height_m * math.tan(math.radians(min(sun_zenith, 85.0))) / resolution
    distance = min(distance, MAX_SHIFT_PX)
    azimuth = math.radians(sun_azimuth)
    return round(distance * math.cos(azimuth)), round(-distance * math.sin(azimuth))


def opacity_and_shadow(
    shape: tuple[int, int],
    params: CloudParameters,
    rng: np.random.Generator,
    resolution: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity and shadow opacity (both (H, W) float32) of one crop.

    The cloud field is drawn on a canvas extended by the shadow offset, so that clouds just
    off the crop cast their shadows into it; the shadow field is the canvas read at the
    offset position.
    """
    height, width = shape
    d_row, d_col = shadow_shift(
        params.cloud_height_m, params.sun_zenith, params.sun_azimuth, resolution
    )
    canvas_shape = (height + abs(d_row), width + abs(d_col))
    noise = fractal_noise(
        canvas_shape,
        rng,
        roughness=params.roughness,
        scale_px=params.cloud_scale_m / resolution,
    )
    canvas = cloud_opacity(noise, params)
    row0, col0 = max(d_row, 0), max(d_col, 0)
    alpha = canvas[row0 : row0 + height, col0 : col0 + width]
    shadow = canvas[row0 - d_row : row0 - d_row + height, col0 - d_col : col0 - d_col + width]
    return alpha, shadow


def band_vector(table: dict[str, float], bands: Sequence[str]) -> np.ndarray:
    """Values of ``table`` for ``bands`` as a (C, 1, 1) float32 column (BandError if missing)."""
    missing = [b for b in bands if b not in table]
    if missing:
        raise BandError(
            f"no cloud spectrum for band(s) {', '.join(missing)}; synthetic clouds need "
            f"Sentinel-2 spectral bands ({', '.join(MSI_BAND_NAMES)})"
        )
    return np.array([table[b] for b in bands], dtype=np.float32)[:, None, None]


def shadow_weights(bands: Sequence[str]) -> np.ndarray:
    """(C, 1, 1) share of each band's darkening relative to NIR (B08 = 1; blue < 1)."""
    direct = 1.0 - band_vector(DIFFUSE_FRACTION, bands)
    return direct / (1.0 - DIFFUSE_FRACTION["B08"])


def cloud_radiance(
    bands: Sequence[str], params: CloudParameters, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray:
    """Cloud reflectance (C, H, W) float32: spectrum x brightness x (1 + texture x noise)."""
    spectrum = band_vector(CLOUD_SPECTRA, bands).copy()
    if "B10" in bands:
        spectrum[list(bands).index("B10")] *= params.cirrus
    texture = fractal_noise(
        shape, rng, roughness=2.0, scale_px=max(shape) / 4.0
    )  # cloud-top structure
    relative = np.clip(1.0 + params.texture * texture, 0.5, 1.5)
    return (spectrum * params.brightness * relative[None]).astype(np.float32)


def cloud_illumination(alpha: np.ndarray, params: CloudParameters) -> np.ndarray:
    """Relative cloud-top brightness (H, W) float32 of a heaped (cumulus-like) cloud field.

    Sides whose thickness falls away from the sun get less direct light and look darker
    (down to ``1 - side_shading``), sides facing the sun brighter; thin edges are greyer than
    cores (``1 - edge_dimming * (1 - alpha)``). Thickness is the smoothed opacity.
    """
    from scipy import ndimage

    edge = 1.0 - params.edge_dimming * (1.0 - alpha)
    if params.side_shading <= 0.0 or not np.any(alpha > 0):
        return edge.astype(np.float32)
    d_row, d_col = np.gradient(ndimage.gaussian_filter(alpha.astype(np.float32), 2.0))
    azimuth = math.radians(params.sun_azimuth)
    toward_sun = -math.cos(azimuth) * d_row + math.sin(azimuth) * d_col  # rows grow south
    scale = float(np.quantile(np.abs(toward_sun[alpha > 0]), 0.95)) + 1e-6
    side = 1.0 - params.side_shading * np.clip(toward_sun / scale, -1.0, 1.0)
    return (side * edge).astype(np.float32)


def synthetic_labels(
    alpha: np.ndarray,
    darkening: np.ndarray,
    valid: np.ndarray,
    rules: LabelRules = LabelRules(),
) -> np.ndarray:
    """Canonical mask (H, W) uint8 from opacity, NIR shadow darkening and data validity.

    Later rules win: shadow, then thin cloud, then thick cloud (so no shadow under cloud),
    then no data.
    """
    mask = np.full(alpha.shape, CLEAR, dtype=np.uint8)
    mask[darkening >= rules.shadow_darkening] = CLOUD_SHADOW
    mask[alpha > rules.thin_alpha] = THIN_CLOUD
    mask[alpha > rules.thick_alpha] = THICK_CLOUD
    mask[~valid] = NODATA
    return mask


def check_surface(surface: np.ndarray, bands: Sequence[str]) -> tuple[str, ...]:
    """Canonical band names of a (C, H, W) surface, refusing a band count mismatch."""
    names = canonical_band_names(bands)
    if surface.ndim != 3 or surface.shape[0] != len(names):
        raise BandError(
            f"surface must be (C, H, W) with one plane per band ({len(names)}: "
            f"{', '.join(names)}); got shape {surface.shape}"
        )
    return names


def render(
    surface: np.ndarray,
    bands: Sequence[str],
    params: CloudParameters,
    rng: np.random.Generator,
    *,
    resolution: float,
    rules: LabelRules = LabelRules(),
) -> tuple[np.ndarray, np.ndarray]:
    """Clouds and shadows of ``params`` over ``surface`` (see the module docstring).

    ``surface``: (C, H, W) reflectance (0-1), NaN = no data, bands named by ``bands``;
    ``resolution``: metres per pixel; ``rules``: labelling thresholds. Returns the image (C, H, W) float32 reflectance (NaN
    where the surface is) and the canonical mask (H, W) uint8.
    """
    names = check_surface(surface, bands)
    shape = (surface.shape[1], surface.shape[2])
    alpha, alpha_shadow = opacity_and_shadow(shape, params, rng, resolution)
    darkening = params.shadow_strength * alpha_shadow  # NIR (B08) darkening
    shaded = surface * (1.0 - np.minimum(shadow_weights(names) * darkening[None], 0.95))
    cloud = cloud_radiance(names, params, rng, shape) * cloud_illumination(alpha, params)[None]
    image = (1.0 - alpha[None]) * shaded + alpha[None] * cloud
    valid = np.all(np.isfinite(surface), axis=0)
    return image.astype(np.float32), synthetic_labels(alpha, darkening, valid, rules)


def synthesize(
    surface: np.ndarray,
    bands: Sequence[str],
    rng: np.random.Generator,
    *,
    sun_zenith: float,
    sun_azimuth: float,
    resolution: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Random synthetic clouds and shadows over a clear ``surface``.

    ``surface`` (C, H, W) float reflectance (NaN = no data) with band names ``bands``; sun
    angles in degrees (azimuth clockwise from north); ``resolution`` in metres. Returns
    ``(image (C, H, W) float32, mask (H, W) uint8 canonical)``. Deterministic for a given
    ``rng`` state.
    """
    params = draw_parameters(rng, sun_zenith=sun_zenith, sun_azimuth=sun_azimuth)
    return render(surface, bands, params, rng, resolution=resolution)


SurfaceSource = Scene | str | Path | tuple[np.ndarray, Sequence[str]]


def as_scene(
    source: SurfaceSource | np.ndarray,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    level: str | None = None,
) -> Scene:
    """A :class:`Scene` from a Scene, a path (:func:`read_scene`), an ``(array, band names)``
    pair, or a (C, H, W) reflectance array whose band names are ``bands``."""
    if isinstance(source, Scene):
        return source
    if isinstance(source, tuple):
        array, names = source
        return read_scene(np.asarray(array), bands=names, pixel_size=resolution, level=level)
    if isinstance(source, np.ndarray):
        return read_scene(source, bands=bands, pixel_size=resolution, level=level)
    return read_scene(source, resolution=resolution, level=level)


def random_flips(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """``image`` (C, H, W) flipped up-down and/or left-right at random; names of the flips."""
    flips: list[str] = []
    if rng.random() < 0.5:
        image, flips = image[:, ::-1, :], [*flips, "vertical"]
    if rng.random() < 0.5:
        image, flips = image[:, :, ::-1], [*flips, "horizontal"]
    return np.ascontiguousarray(image), flips


class SyntheticClouds(CloudDataset):
    """Synthetic clouds and shadows (:func:`synthesize`) on crops of clear surfaces.

    ``surfaces``: clear-sky surfaces as :class:`Scene` objects, paths (read with
    :func:`read_scene`: band folders, GeoTIFFs, SAFE) or ``(array (C, H, W) reflectance,
    band names)`` pairs; NaN marks pixels that are not clear (they become label 255).
    ``bands``: bands of the samples (default: the first surface's); every surface must have
    them. ``n``: number of samples; ``size``: crop edge (pixels); ``seed``: sample ``i`` is a
    function of ``(seed, i)`` only. ``resolution``: read resolution for paths (10, 20, 60 m;
    default native) and the pixel size of arrays (default 10 m). ``rules``: labelling
    thresholds (default :class:`LabelRules`).

    Sample ``i``: a random crop of a random surface, random flips, sun zenith 15-65 degrees and
    azimuth 0-360 degrees, then :func:`synthesize`. Keys: ``image`` (C, size, size) float32
    reflectance (NaN = no data), ``mask`` = ``mask_canonical`` (size, size) uint8 canonical,
    ``valid`` (mask != 255), ``bands``, ``crs``/``transform`` None, ``meta``: ``id``,
    ``surface`` (index and ``source``), ``window`` (row, col), ``flips``, ``resolution`` (m)
    and every :class:`CloudParameters` field.
    """

    name: ClassVar[str] = "synthetic"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        surfaces: Sequence[SurfaceSource],
        *,
        bands: Sequence[str] | None = None,
        n: int = 1000,
        size: int = 256,
        seed: int = 0,
        resolution: float | None = None,
        rules: LabelRules | None = None,
    ) -> None:
        self.rules = rules or LabelRules()
        if not surfaces:
            raise DatasetError(
                "SyntheticClouds needs at least one clear surface; give surfaces=[...]"
            )
        if n < 1 or size < 1:
            raise DatasetError(f"n and size must be at least 1 (got n={n}, size={size})")
        scenes = [as_scene(s, resolution=resolution) for s in surfaces]
        self.bands = canonical_band_names(bands) if bands is not None else scenes[0].bands
        self.scenes = [scene.select(self.bands) for scene in scenes]
        self.n, self.size, self.seed = n, size, seed
        self._refuse_small_surfaces()

    def _refuse_small_surfaces(self) -> None:
        small = [i for i, s in enumerate(self.scenes) if min(s.shape) < self.size]
        if small:
            raise DatasetError(
                f"surface(s) {small} are smaller than the crop size {self.size}; give larger "
                "surfaces or a smaller size="
            )

    @classmethod
    def detect(cls, path: Path) -> bool:
        """Never: synthetic samples are generated, not read from disk."""
        return False

    def __len__(self) -> int:
        return self.n

    def _crop(self, rng: np.random.Generator) -> tuple[int, Scene, Window]:
        """A random surface and a random ``size`` x ``size`` window inside it."""
        which = int(rng.integers(len(self.scenes)))
        scene = self.scenes[which]
        row = int(rng.integers(scene.shape[0] - self.size + 1))
        col = int(rng.integers(scene.shape[1] - self.size + 1))
        return which, scene, Window(row, col, self.size, self.size)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, index])
        which, scene, window = self._crop(rng)
        surface, flips = random_flips(scene.read(window), rng)
        zenith = float(rng.uniform(*SUN_ZENITH_RANGE))
        azimuth = float(rng.uniform(0.0, 360.0))
        params = draw_parameters(rng, sun_zenith=zenith, sun_azimuth=azimuth)
        resolution = scene.grid.resolution
        image, mask = render(
            surface, self.bands, params, rng, resolution=resolution, rules=self.rules
        )
        meta: dict[str, Any] = {
            "id": f"synthetic_{self.seed}_{index}",
            "surface": which,
            "source": scene.meta.get("path", scene.product_id),
            "window": (window.row, window.col),
            "flips": flips,
            "resolution": resolution,
            **asdict(params),
            "label_rules": asdict(self.rules),
        }
        return {
            "image": image,
            "mask": mask,
            "mask_canonical": mask,
            "valid": mask != NODATA,
            "bands": self.bands,
            "crs": None,
            "transform": None,
            "meta": meta,
        }

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "surfaces": len(self.scenes),
            "bands": ", ".join(self.bands),
            "size": self.size,
            "seed": self.seed,
        }
