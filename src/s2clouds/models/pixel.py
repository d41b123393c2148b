"""The pixel model: gradient-boosted trees (LightGBM) over per-pixel features.

Like s2cloudless and the LightGBM assistant of the IRIS annotation tool, the model classifies
each pixel from its spectrum, spectral indices and a little local context
(:mod:`s2clouds.models.pixel_features`). It trains in seconds on labelled pixels or
scribbles (:mod:`s2clouds.train.pixel`) and needs only ``lightgbm`` (``pip install
"s2clouds[pixel]"``), no torch.

A saved model is a LightGBM text model ``<name>.lgbm`` with its :class:`WeightSpec` in the
sidecar ``<name>.json`` (architecture ``"lightgbm-pixel"``; ``features`` lists the feature
stack; ``mean``/``std`` are unused by trees and stored as 0/1). The spec's sha256 guards the
model file.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds._optional import install_hint, require
from s2clouds.errors import ModelError
from s2clouds.io.write import atomic_path
from s2clouds.models.base import N_CLASSES, ModelContext, fill_clear
from s2clouds.models.coarse import predict_on_blocks, resolution_factor
from s2clouds.models.pixel_features import (
    check_feature_bands,
    features_halo,
    pixel_features,
    sampled_features,
)
from s2clouds.models.shadow_geometry import ShadowGeometry
from s2clouds.models.weights import (
    SpecModel,
    WeightSpec,
    read_sidecar,
    verify_weights,
    write_sidecar,
)
from s2clouds.resample import centre_taps
from s2clouds.resources import model_threads

if TYPE_CHECKING:
    from s2clouds.models.info import ModelInfo

PIXEL_ARCHITECTURE = "lightgbm-pixel"
PIXEL_SUFFIX = ".lgbm"
PIXEL_INSTALL_HINT = install_hint("pixel")  # LightGBM is a core dependency: a reinstall
#: pixels per call of the booster (bounds the (N, F) feature matrix in memory)
PREDICT_CHUNK = 1 << 18
#: LightGBM's prediction early stopping: a pixel stops going through further trees once one
#: class leads the others by this raw-score margin (checked every few rounds). It halves the
#: time on scenes that are mostly clear; the winning class never changed in our checks and
#: probabilities move by at most a few percent.
EARLY_STOP = {"pred_early_stop": True, "pred_early_stop_freq": 5, "pred_early_stop_margin": 6.0}


#: environment variable set by the command line (which never uses LightGBM's scikit-learn
#: classes, data frames or Dask training): LightGBM is then imported without the optional
#: packages of :data:`LIGHTGBM_EXTRAS`, whose imports take seconds (pandas alone ~1 s)
WITHOUT_SKLEARN_ENV = "S2CLOUDS_LIGHTGBM_WITHOUT_SKLEARN"
#: optional packages LightGBM imports when installed, and the command line never needs
LIGHTGBM_EXTRAS = ("sklearn", "pandas", "pyarrow", "datatable", "dask")


def import_lightgbm() -> Any:
    """The ``lightgbm`` module, or :class:`ModelError` with the install command."""
    quick = os.environ.get(WITHOUT_SKLEARN_ENV) == "1"
    if quick and "lightgbm" not in sys.modules:
        # hidden for this import only (None in sys.modules is an ImportError); a later
        # import of any of them works as usual
        hidden = [name for name in LIGHTGBM_EXTRAS if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            return require("lightgbm", "pixel", purpose="the pixel model", error=ModelError)
        finally:
            for name in hidden:
                del sys.modules[name]
    return require("lightgbm", "pixel", purpose="the pixel model", error=ModelError)


def pixel_spec(
    name: str,
    bands: Sequence[str],
    features: Sequence[str],
    *,
    tile_size: int = 2048,
    stride: int = 1,
    **provenance: Any,
) -> WeightSpec:
    """The weight spec of a pixel model on ``bands`` with the feature stack ``features``,
    classifying every ``stride``-th pixel; ``provenance``: further :class:`WeightSpec`
    fields (training_data, licence, notes, ...).

    The halo is the features' window radius plus ``stride`` (border cells interpolate from
    one cell further out); ``tile_size`` exceeds a default 1024 px block with its halo, so a
    block is one call.
    """
    check_feature_bands(features, bands)
    return WeightSpec(
        name=name,
        architecture=PIXEL_ARCHITECTURE,
        bands=tuple(bands),
        mean=(0.0,) * len(bands),
        std=(1.0,) * len(bands),
        features=tuple(features),
        size_multiple=1,
        halo=features_halo(features) + stride,
        tile_size=tile_size,
        stride=stride,
        **provenance,
    )


@functools.lru_cache(maxsize=8)
def _load_booster(path: Path, sha256: str | None) -> Any:
    """The LightGBM booster in ``path`` (cached per file content)."""
    lightgbm = import_lightgbm()
    try:
        return lightgbm.Booster(model_file=str(path))
    except Exception as exc:  # LightGBM raises its own LightGBMError
        raise ModelError(
            f"LightGBM cannot read {path} ({exc}); the file is damaged: retrain or re-copy it"
        ) from exc


class PixelModel(ShadowGeometry, SpecModel):
    """A :class:`~s2clouds.models.base.CloudModel` over a LightGBM booster.

    ``booster``: a trained ``lightgbm.Booster`` with 4 classes (canonical order) over the
    features of ``spec.features``; ``threads``: LightGBM threads (default: usable cores).
    """

    def __init__(
        self,
        booster: Any,
        spec: WeightSpec,
        *,
        name: str | None = None,
        threads: int | None = None,
    ) -> None:
        if spec.architecture != PIXEL_ARCHITECTURE or not spec.features:
            raise ModelError(
                f"spec {spec.name!r} is not a pixel model spec (architecture "
                f"{spec.architecture!r}); pixel models are made by s2clouds.train.pixel"
            )
        check_feature_bands(spec.features, spec.bands)
        if spec.halo < features_halo(spec.features):
            raise ModelError(
                f"spec {spec.name!r} gives a halo of {spec.halo} px but its features read "
                f"{features_halo(spec.features)} px around a pixel; keep the exported .json"
            )
        n_features = booster.num_feature()
        if n_features != len(spec.features):
            raise ModelError(
                f"the booster reads {n_features} features but spec {spec.name!r} lists "
                f"{len(spec.features)}; keep the .json written with this model"
            )
        self.booster, self.spec, self._name = booster, spec, name
        self.threads = threads or model_threads()

    @classmethod
    def load(
        cls, path: str | Path, spec: WeightSpec | None = None, *, name: str | None = None
    ) -> PixelModel:
        """The model saved at ``path`` (``.lgbm``) with its sidecar spec (sha256 checked)."""
        model_path = Path(path)
        if not model_path.is_file():
            raise ModelError(f"pixel model {model_path} not found; check the path")
        spec = spec if spec is not None else read_sidecar(model_path)
        verify_weights(model_path, spec)
        return cls(_load_booster(model_path, spec.sha256), spec, name=name)

    def features(self, image: np.ndarray) -> np.ndarray:
        """Feature stack (F, H, W) float32 of reflectance ``image`` (C, H, W)."""
        return pixel_features(image, self.spec.bands, self.spec.features)

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 from reflectance (C, H, W) in ``bands``
        order (0-1, NaN where there is no data; such pixels get clear = 1).

        A model whose spec resolution is coarser than the input's (e.g. a 20 m model on
        10 m bands) runs on block means of the input and its probabilities are interpolated
        bilinearly back to the input grid.

        Features are computed at every pixel; the trees run on every ``spec.stride``-th pixel
        (centres of ``stride`` x ``stride`` cells) and the probabilities are interpolated
        bilinearly back to (H, W).
        """
        self.spec.check_image(image)
        factor = self.internal_factor(context)

        def on_grid(grid: np.ndarray) -> np.ndarray:
            return self.with_shadow_geometry(self.proba_on_grid(grid), context, factor)

        return predict_on_blocks(image, factor, on_grid)

    def internal_factor(self, context: ModelContext) -> int:
        """How many input pixels make one model pixel: the spec's resolution over the
        input's (``context.resolution``, metres), rounded; 1 when the input is as coarse
        as the model or its resolution is unknown."""
        return resolution_factor(self.spec.resolution, context)

    def required_halo(self, context: ModelContext) -> int:
        """Halo in input pixels: the receptive field in model pixels (the features' context
        windows, the cell interpolation's reach ``stride`` and the upsampling's one model
        pixel, plus the block being averaged) times the internal factor, plus the shadow
        reach (a cloud beyond the window may shade it)."""
        reach = features_halo(self.spec.features) + self.spec.stride + 2
        return reach * self.internal_factor(context) + self.shadow_halo(context)

    def required_alignment(self, context: ModelContext) -> int:
        """Input pixels per sampled cell: the internal factor times ``spec.stride``."""
        return self.internal_factor(context) * self.spec.stride

    def proba_on_grid(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (4, H, W) on the grid of ``image`` (C, H, W) itself."""
        valid = np.all(np.isfinite(image), axis=0)
        stride = self.spec.stride
        if stride == 1 or min(valid.shape) <= stride:  # too small to sample: every pixel
            return self.classify(self.features(image), valid)
        return self.interpolated(image, valid, stride)

    def interpolated(self, image: np.ndarray, valid: np.ndarray, stride: int) -> np.ndarray:
        """Probabilities (4, H, W) from the centres of ``stride`` x ``stride`` cells of
        ``image`` (C, H, W), interpolated with weights that leave out no-data cells; valid
        pixels that no valid cell reaches (next to no data) are classified themselves."""
        centres = slice(stride // 2, None, stride)
        cell_valid = valid[centres, centres]
        cells = sampled_features(image, self.spec.bands, self.spec.features, centres, centres)
        coarse = self.classify(cells, cell_valid) * cell_valid[None]
        weight = interpolate_cells(cell_valid[None].astype(np.float32), valid.shape, stride)[0]
        probs = interpolate_cells(coarse, valid.shape, stride)
        covered = weight > 1e-6
        if covered.all():  # the usual case: one division, no boolean indexing
            probs /= weight[None]
            return probs
        probs[:, covered] /= weight[covered]
        fill_clear(probs, ~covered)
        orphans = valid & ~covered
        if np.any(orphans):
            stack = self.features(image)
            probs[:, orphans] = self.predict_rows(stack[:, orphans].T).T
        return probs

    def classify(self, stack: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Probabilities (4, H, W) float32 of every pixel of a feature stack (F, H, W);
        pixels not ``valid`` (H, W) bool (no data) get clear = 1."""
        h, w = stack.shape[1:]
        flat = stack.reshape(len(self.spec.features), -1)
        probs = np.zeros((N_CLASSES, h * w), dtype=np.float32)
        probs[0] = 1.0
        rows = np.flatnonzero(valid.ravel())
        for start in range(0, rows.size, PREDICT_CHUNK):
            chunk = rows[start : start + PREDICT_CHUNK]
            probs[:, chunk] = self.predict_rows(flat[:, chunk].T).T
        return probs.reshape(N_CLASSES, h, w)

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 4) float32 of feature rows (N, F)."""
        try:
            out = self.booster.predict(
                np.ascontiguousarray(rows, dtype=np.float32),
                num_threads=self.threads,
                **EARLY_STOP,
            )
        except Exception as exc:  # LightGBM raises its own LightGBMError
            raise ModelError(f"LightGBM failed on model {self.name!r}: {exc}") from exc
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != N_CLASSES:
            raise ModelError(
                f"pixel model {self.name!r} returned shape {out.shape}; it must be a "
                f"{N_CLASSES}-class model in canonical order: retrain it with s2clouds"
            )
        return out

    def save(self, path: str | Path) -> Path:
        """Write the booster to ``path`` (``.lgbm``) and its spec with sha256 beside it
        (both atomically); returns ``path``."""
        model_path = Path(path)
        if model_path.suffix != PIXEL_SUFFIX:
            raise ModelError(f"save pixel models as <name>{PIXEL_SUFFIX}; got {model_path.name}")
        with atomic_path(model_path) as tmp:
            self.booster.save_model(str(tmp))
        write_sidecar(self.spec, model_path)
        self.spec = read_sidecar(model_path)
        return model_path


def interpolate_cells(coarse: np.ndarray, shape: tuple[int, int], stride: int) -> np.ndarray:
    """Bilinear interpolation of per-cell values (K, h, w) sampled at pixel ``stride // 2 +
    i * stride`` to every pixel of ``shape`` (K, H, W) float32 (edges hold the last cell)."""
    along_rows = _linear_along(coarse.astype(np.float32, copy=False), 1, shape[0], stride)
    return _linear_along(along_rows, 2, shape[1], stride)


def _linear_along(values: np.ndarray, axis: int, size: int, stride: int) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` from cell centres to ``size`` pixels
    (weights from each pixel's exact phase in its cell: see
    :func:`~s2clouds.resample.centre_taps`)."""
    numerators = np.arange(size, dtype=np.int64) - stride // 2
    low, high, weight = centre_taps(numerators, stride, values.shape[axis])
    shape = [1] * values.ndim
    shape[axis] = size
    weight = weight.reshape(shape)
    return (1 - weight) * np.take(values, low, axis=axis) + weight * np.take(
        values, high, axis=axis
    )


def pixel_model_info(path: str | Path, name: str | None = None) -> ModelInfo:
    """A registry entry for the pixel model saved at ``path`` under ``name`` (default: the
    spec's name). Only the JSON spec is read here; the model loads when first built."""
    from s2clouds.models.info import spec_model_info

    model_path = Path(path)
    spec = read_sidecar(model_path)
    entry_name = name or spec.name
    factory = functools.partial(_build_pixel_model, model_path, spec, entry_name)
    return spec_model_info(
        spec,
        entry_name,
        factory,
        kind="pixel model",
        runtime="LightGBM",
        notes=(f"needs LightGBM: {PIXEL_INSTALL_HINT}",),
    )


def _build_pixel_model(
    path: Path, spec: WeightSpec, name: str, available: Sequence[str]
) -> PixelModel:
    return PixelModel.load(path, spec, name=name).for_bands(available)
