"""Adapters that run the published peer cloud maskers as s2clouds models.

* :class:`S2CloudlessModel` runs Sentinel Hub's ``s2cloudless`` (LightGBM pixel classifier,
  Zupanc 2017) at its usual 160 m.
* :class:`UkisCsmaskModel` runs DLR's ``ukis-csmask`` 1.0 U-Nets (Wieland et al. 2019, 2022)
  through its own ONNX files and normalisation statistics, returning the softmax
  probabilities that ``CSmask`` computes internally before its argmax, at the about 30 m
  its documentation recommends.

Each runs at its documented operating point by default, on block means of the input with
the probabilities interpolated back (:mod:`s2clouds.models.coarse`); built with
``native=True`` (registered as ``<name>@native``) it sees the input at its own resolution.

Both packages are optional (``pip install "s2clouds[peers]"``) and are imported only when a
model runs. Their outputs are mapped onto the canonical classes (clear, thick cloud, thin
cloud, cloud shadow); neither separates thin from thick cloud, so all cloud is thick cloud.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from s2clouds._optional import install_hint, require
from s2clouds.bands import RGBN_BANDS, canonical_band_names
from s2clouds.errors import BandError, ModelError
from s2clouds.io.tiling import blend_tiles
from s2clouds.models.base import ASSUMED_RESOLUTION_M, N_CLASSES, CloudModel, ModelContext
from s2clouds.models.coarse import NATIVE_SUFFIX, predict_on_blocks, resolution_factor

PEERS_INSTALL_HINT = install_hint("peers")

#: the 10 bands of s2cloudless's ``all_bands=False`` input, in its order (``MODEL_BANDS``)
S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
S2CLOUDLESS_RESOLUTION = 160.0  # metres: the grid s2cloudless is meant to run on
S2CLOUDLESS_THRESHOLD = 0.4  # its default cloud threshold on the (smoothed) probability

UKIS_BANDS_4 = RGBN_BANDS  # B02, B03, B04, B08
UKIS_BANDS_6 = (*RGBN_BANDS, "B11", "B12")
#: canonical band -> the band name ukis-csmask's model metadata uses
UKIS_BAND_NAMES = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B08": "nir",
    "B11": "swir16",
    "B12": "swir22",
}
#: ukis-csmask class index -> canonical class index (0 clear, 1 cloud -> thick, 2 shadow)
UKIS_TO_CANONICAL = (0, 1, 3)
UKIS_TILE = 256  # the models' training tile (``target_size`` in their metadata)
UKIS_OVERLAP = 64  # px (at the network's resolution) by which its tiles overlap and blend
UKIS_RESOLUTION = 30.0  # metres: the resolution ukis-csmask's documentation recommends

#: spellings of the processing level -> the level ukis-csmask names its models by
_LEVELS = {"L1C": "l1c", "L2A": "l2a", "LEVEL1C": "l1c", "LEVEL2A": "l2a"}


# --------------------------------------------------------------------------- shared helpers
def import_peer(module: str, extra: str = "peers") -> ModuleType:
    """Import optional peer ``module`` or raise :class:`ModelError` saying how to install it
    (the ``extra`` of s2clouds that brings it)."""
    return require(module, extra, purpose="this model", error=ModelError)


def processing_level(context: ModelContext, default: str | None) -> str | None:
    """``context.level`` as ``"l1c"``/``"l2a"``; ``default`` when the scene does not say."""
    level = context.level
    if level is None:
        return default
    key = str(level).strip().upper().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _LEVELS:
        raise ModelError(f"unknown processing level {level!r}; declare the input as 'L1C' or 'L2A'")
    return _LEVELS[key]


def check_stack(image: np.ndarray, bands: Sequence[str], model: str) -> None:
    """Refuse an ``image`` that is not a (C, H, W) stack with one plane per model band."""
    if image.ndim != 3 or image.shape[0] != len(bands):
        raise BandError(
            f"the {model} model expects {len(bands)} bands ({', '.join(bands)}) as (C, H, W); "
            f"got shape {image.shape}"
        )


def missing_bands(available: Sequence[str], needed: Sequence[str]) -> list[str]:
    """Bands of ``needed`` that ``available`` (any spelling) lacks, in ``needed`` order."""
    have = set(canonical_band_names(available))
    return [b for b in needed if b not in have]


def binary_probabilities(p_cloud: np.ndarray) -> np.ndarray:
    """Canonical probabilities (4, H, W) float32 from a cloud probability (H, W): thick = p."""
    probs = np.zeros((N_CLASSES, *p_cloud.shape), dtype=np.float32)
    probs[1] = np.clip(p_cloud, 0.0, 1.0)
    probs[0] = 1.0 - probs[1]
    return probs


# ------------------------------------------------------------------------------ s2cloudless
@functools.cache
def _s2cloudless_detector(average_over: int, dilation_size: int) -> Any:
    """One ``S2PixelCloudDetector`` per setting (loading the LightGBM booster is slow)."""
    module = import_peer("s2cloudless")
    return module.S2PixelCloudDetector(
        threshold=S2CLOUDLESS_THRESHOLD,
        average_over=average_over,
        dilation_size=dilation_size,
        all_bands=False,
    )


@dataclass(frozen=True, kw_only=True)
class S2CloudlessModel(CloudModel):
    """Sentinel Hub's s2cloudless, run at its usual 160 m, as canonical probabilities.

    Input contract (refused otherwise):

    * bands: the 10 L1C bands s2cloudless reads, ``B01 B02 B04 B05 B08 B8A B09 B10 B11 B12``
      (in that order; B10 cirrus exists in L1C only);
    * level: L1C top-of-atmosphere reflectance (DN / 10000, with the processing-baseline 04.00
      offset removed, as the s2clouds readers return it). A context ``level`` of L2A raises
      :class:`ModelError`; an unknown level (None) is taken as L1C;
    * resolution: any (``context.resolution``, metres, default 10). The image is
      block-averaged by ``factor = round(160 / resolution)`` (16 at 10 m, 8 at 20 m, 3 at
      60 m) to about 160 m, classified there, and the probabilities are interpolated back
      bilinearly to the input grid. NaN pixels are left out of the block means (and are
      clear in the output). With ``native`` the image is classified as it comes.

    Output: p(thick cloud) = the s2cloudless cloud probability, p(clear) = 1 - p; thin cloud
    and cloud shadow are always 0 (s2cloudless has no shadow class and no thin/thick split).

    With ``postprocess`` (default) the probability map gets s2cloudless's own mask
    post-processing at 160 m, so that the argmax is the mask ``get_cloud_masks`` makes:
    averaging over a disk of ``average_over`` = 4 px, grey dilation with a disk of
    ``dilation_size`` = 2 px (the probability form of its binary dilation), and a monotone
    piecewise-linear rescaling that moves its threshold 0.4 to 0.5. With
    ``postprocess=False`` p(thick) is the raw ``get_cloud_probability_maps`` output.
    """

    name: str = "s2cloudless"
    bands: tuple[str, ...] = S2CLOUDLESS_BANDS
    halo: int = 112  # (average_over + dilation_size + 1) blocks of 16 px at 10 m
    postprocess: bool = True
    average_over: int = 4
    dilation_size: int = 2
    native: bool = False

    @classmethod
    def for_bands(cls, available: Sequence[str], *, native: bool = False) -> S2CloudlessModel:
        """The model for a scene with ``available`` bands (all 10 s2cloudless bands needed);
        ``native``: run at the input's resolution (named ``s2cloudless@native``)."""
        missing = missing_bands(available, S2CLOUDLESS_BANDS)
        if missing:
            raise BandError(
                f"s2cloudless needs the L1C bands {', '.join(S2CLOUDLESS_BANDS)}; missing "
                f"{', '.join(missing)}. Use an L1C product with all bands (B10 is L1C only) "
                "or choose another model"
            )
        if native:  # the smoothing and dilation disks then reach 7 px of the input
            return cls(native=True, name=f"s2cloudless{NATIVE_SUFFIX}", halo=7)
        return cls()

    def factor(self, context: ModelContext) -> int:
        """Block-averaging factor that brings ``context.resolution`` to about 160 m (1
        when ``native``)."""
        if self.native:
            return 1
        resolution = float(context.resolution or ASSUMED_RESOLUTION_M)
        return max(1, round(S2CLOUDLESS_RESOLUTION / resolution))

    def required_halo(self, context: ModelContext) -> int:
        """Input pixels of context the 160 m smoothing and dilation reach across."""
        blocks = 1 + (self.average_over + self.dilation_size if self.postprocess else 0)
        return blocks * self.factor(context)

    def required_alignment(self, context: ModelContext) -> int:
        """Windows start on the 160 m blocks, so they average the same pixels."""
        return self.factor(context)

    def cloud_probability(self, coarse: np.ndarray) -> np.ndarray:
        """s2cloudless cloud probability (h, w) float32 for a (10, h, w) reflectance stack."""
        detector = _s2cloudless_detector(self.average_over, self.dilation_size)
        data = np.moveaxis(coarse, 0, -1)[np.newaxis]  # (1, h, w, 10)
        proba: np.ndarray = detector.get_cloud_probability_maps(data)[0]
        return proba.astype(np.float32, copy=False)

    def postprocessed(self, proba: np.ndarray) -> np.ndarray:
        """s2cloudless's mask post-processing on a probability map (h, w), threshold -> 0.5.

        ``cv2`` comes with s2cloudless; the filters are the detector's own disks, with the
        same borders as :meth:`S2PixelCloudDetector.get_mask_from_prob`. The averaging is
        ``scipy.ndimage.correlate`` (each pixel's weighted sum in a fixed order, in double)
        rather than ``cv2.filter2D``, whose vectorised sums round differently with a
        pixel's column in the array: a block or a cluster would change the mask.
        """
        import cv2
        from scipy import ndimage

        detector = _s2cloudless_detector(self.average_over, self.dilation_size)
        smooth = proba
        if self.average_over:
            kernel = np.asarray(detector.conv_filter, dtype=np.float64)
            smooth = ndimage.correlate(proba.astype(np.float64), kernel, mode="reflect").astype(
                np.float32
            )
        if self.dilation_size:
            smooth = cv2.dilate(smooth, detector.dilation_filter)
        return threshold_to_half(smooth, S2CLOUDLESS_THRESHOLD)

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 from L1C TOA reflectance (10, H, W)."""
        check_stack(image, self.bands, self.name)
        if processing_level(context, default="l1c") != "l1c":
            raise ModelError(
                "s2cloudless was trained on L1C top-of-atmosphere reflectance and cannot run "
                "on L2A surface reflectance; give it the L1C product (with B10) or choose "
                "another model (e.g. ukis-csmask, which has an L2A variant)"
            )
        return predict_on_blocks(image, self.factor(context), self.coarse_probabilities, fill=0.0)

    def coarse_probabilities(self, coarse: np.ndarray) -> np.ndarray:
        """Canonical probabilities (4, h, w) of the (10, h, w) stack s2cloudless classifies
        (NaN fed as 0), post-processed when ``postprocess``."""
        proba = self.cloud_probability(np.nan_to_num(coarse, nan=0.0))
        if self.postprocess:
            proba = self.postprocessed(proba)
        return binary_probabilities(proba)


def threshold_to_half(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Monotone piecewise-linear map of [0, 1] onto itself sending ``threshold`` to 0.5.

    ``p > threshold`` exactly when the result is above 0.5 (up to float32 rounding next to
    the threshold), so an argmax against ``1 - result`` reproduces a ``> threshold`` mask.
    """
    p = proba.astype(np.float64)
    low = p * (0.5 / threshold)
    high = 0.5 + (p - threshold) * (0.5 / (1.0 - threshold))
    return np.where(p > threshold, high, low).astype(np.float32)


# ------------------------------------------------------------------------------ ukis-csmask
@dataclass(frozen=True)
class UkisSpec:
    """One ukis-csmask network: its ONNX file and the input statistics it was trained with."""

    onnx_path: Path
    band_names: tuple[str, ...]  # ukis names ("blue", ...) in network input order
    mean: np.ndarray  # (C, 1, 1) float32 reflectance
    std: np.ndarray  # (C, 1, 1) float32 reflectance
    version: str


@functools.cache
def ukis_spec(n_bands: int, level: str) -> UkisSpec:
    """Read the metadata of ukis-csmask's ``model_{4|6}b_{l1c|l2a}`` network."""
    package = import_peer("ukis_csmask")
    path = Path(str(package.__file__)).parent / f"model_{n_bands}b_{level}.onnx"
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        stats = meta["data"]["dataset_statistics"]
        mean, std = (np.asarray(v, np.float32)[:, None, None] for v in stats["img"])
        return UkisSpec(path, tuple(stats["band_names"]), mean, std, meta["model"]["version"])
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(
            f"ukis-csmask model metadata {path.with_suffix('.json')} is missing or damaged "
            f"({exc}); reinstall it with: {PEERS_INSTALL_HINT}"
        ) from exc


@functools.cache
def _ukis_session(onnx_path: Path) -> Any:
    """An onnxruntime session for a ukis-csmask network (created once per file)."""
    ort = import_peer("onnxruntime", "onnx")
    return ort.InferenceSession(str(onnx_path), providers=ort.get_available_providers())


def pad_to_tile(image: np.ndarray) -> np.ndarray:
    """Mirror-pad (C, h, w) at the bottom and right to the networks' (C, 256, 256) input.

    Symmetric padding, as ukis-csmask itself pads around its tiles; repeated when the tile is
    less than half the network size. Larger inputs are refused: tile them first
    (:meth:`UkisCsmaskModel.predict_proba` does).
    """
    h, w = image.shape[1:]
    if h > UKIS_TILE or w > UKIS_TILE:
        raise ModelError(
            f"ukis-csmask runs on tiles of at most {UKIS_TILE} x {UKIS_TILE} px, got {h} x {w}; "
            "run it through UkisCsmaskModel.predict_proba (or s2clouds predict), which cuts "
            "and blends the tiles"
        )
    padded = image
    while padded.shape[1:] != (UKIS_TILE, UKIS_TILE):
        grow_h = min(UKIS_TILE - padded.shape[1], padded.shape[1])
        grow_w = min(UKIS_TILE - padded.shape[2], padded.shape[2])
        padded = np.pad(padded, ((0, 0), (0, grow_h), (0, grow_w)), mode="symmetric")
    return padded


@dataclass(frozen=True, kw_only=True)
class UkisCsmaskModel(CloudModel):
    """DLR's ukis-csmask 1.0 U-Net (cloud and cloud shadow), as canonical probabilities.

    Input contract:

    * bands: ``B02 B03 B04 B08`` (4-band network) or ``B02 B03 B04 B08 B11 B12`` (6-band
      network, chosen by :meth:`for_bands` whenever B11 and B12 are available);
    * reflectance 0-1 (L1C TOA or L2A surface reflectance); NaN (no data) is fed as 0;
    * level: ``context.level`` picks the L1C or the L2A network; when the scene does not
      say, ``default_level`` is used (``"l2a"``: e.g. the On Cloud N chips are L2A);
    * resolution: about 30 m, as ukis-csmask's documentation recommends: the image is
      block-averaged by ``round(30 / resolution)`` (3 at 10 m, 2 at 20 m), classified there
      and the probabilities are interpolated back bilinearly (no-data pixels are clear).
      With ``native`` (``ukis-csmask@native``) it is classified as it comes. On the three
      On Cloud N dev chips (10 m, L2A, 4 bands) ``CSmask`` itself scored a cloud balanced
      overall accuracy of 0.871 / 0.860 / 0.915 fed 10 m directly and 0.870 / 0.859 / 0.893
      after block-averaging to 30 m (this adapter at 10 m: 0.872 / 0.863 / 0.912; with the
      L1C network: 0.861 / 0.845 / 0.898); at 30 m it runs about 9 times fewer pixels.

    The network is run on 256 x 256 tiles at its resolution, overlapping by
    :data:`UKIS_OVERLAP` px and feather-blended (:func:`s2clouds.io.tiling.blend_tiles`), in
    place of ukis-csmask's own tiling (overlap 0.2, Tukey blending).
    Each tile is normalised with the network's training mean/std, passed through its ONNX
    session and soft-maxed, exactly as ``CSmask._csm`` does before its argmax. Classes map
    0 clear -> clear, 1 cloud -> thick cloud, 2 shadow -> cloud shadow; thin cloud is 0.
    """

    name: str = "ukis-csmask"
    bands: tuple[str, ...] = UKIS_BANDS_4
    halo: int = 64  # px of context at the network's resolution
    default_level: str = "l2a"
    native: bool = False

    @classmethod
    def for_bands(cls, available: Sequence[str], *, native: bool = False) -> UkisCsmaskModel:
        """The 6-band network when B11 and B12 are available, else the 4-band one; with
        ``native`` run at the input's resolution (named ``ukis-csmask@native``)."""
        missing = missing_bands(available, UKIS_BANDS_4)
        if missing:
            raise BandError(
                f"ukis-csmask needs at least {', '.join(UKIS_BANDS_4)} (better also B11, B12); "
                f"missing {', '.join(missing)}"
            )
        six = not missing_bands(available, UKIS_BANDS_6)
        bands = UKIS_BANDS_6 if six else UKIS_BANDS_4
        if native:
            return cls(bands=bands, native=True, name=f"ukis-csmask{NATIVE_SUFFIX}")
        return cls(bands=bands)

    def internal_factor(self, context: ModelContext) -> int:
        """Input pixels per network pixel: ``round(30 / resolution)`` (1 when ``native``,
        or when the input is not at least 1.5 times finer than 30 m)."""
        return 1 if self.native else resolution_factor(UKIS_RESOLUTION, context)

    def required_halo(self, context: ModelContext) -> int:
        """``halo`` network pixels of context, plus the block mean and the interpolation
        back, in input pixels."""
        factor = self.internal_factor(context)
        return self.halo if factor == 1 else (self.halo + 2) * factor

    def required_alignment(self, context: ModelContext) -> int:
        """Windows start on the block grid, so they average the same pixels."""
        return self.internal_factor(context)

    def spec(self, context: ModelContext) -> UkisSpec:
        """The network (4 or 6 bands, L1C or L2A) for this model's bands and the scene level."""
        level = processing_level(context, default=self.default_level)
        return ukis_spec(len(self.bands), level or self.default_level)

    def network_input(self, image: np.ndarray, spec: UkisSpec) -> np.ndarray:
        """(1, C, h, w) float32: bands in the network's order, NaN -> 0, normalised."""
        position = {UKIS_BAND_NAMES[b]: i for i, b in enumerate(self.bands)}
        stack = image[[position[name] for name in spec.band_names]]
        stack = np.nan_to_num(stack.astype(np.float32), nan=0.0)
        return ((stack - spec.mean) / spec.std)[np.newaxis].astype(np.float32, copy=False)

    def class_probabilities(self, image: np.ndarray, spec: UkisSpec) -> np.ndarray:
        """ukis-csmask softmax (3, H, W) float32: clear, cloud, shadow."""
        from scipy.special import softmax

        h, w = image.shape[1:]
        padded = pad_to_tile(image)
        session = _ukis_session(spec.onnx_path)
        x = self.network_input(padded, spec)
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
        probs: np.ndarray = softmax(logits[0], axis=0)[:, :h, :w]
        return probs.astype(np.float32, copy=False)

    def canonical_probabilities(self, image: np.ndarray, spec: UkisSpec) -> np.ndarray:
        """Canonical probabilities (4, h, w) float32 of one tile of at most 256 x 256 px."""
        probs = np.zeros((N_CLASSES, *image.shape[1:]), dtype=np.float32)
        probs[list(UKIS_TO_CANONICAL)] = self.class_probabilities(image, spec)
        return probs

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 from reflectance (C, H, W) in ``bands``:
        at about 30 m (unless ``native``), on overlapping 256 px tiles."""
        check_stack(image, self.bands, self.name)
        spec = self.spec(context)

        def tiled(grid: np.ndarray) -> np.ndarray:
            return blend_tiles(
                grid,
                lambda tile: self.canonical_probabilities(tile, spec),
                N_CLASSES,
                tile=UKIS_TILE,
                overlap=UKIS_OVERLAP,
            )

        return predict_on_blocks(image, self.internal_factor(context), tiled)
