"""Annotation from scribbles: fit a pixel model on the pixels a person labelled in a scene
and predict the rest of it, as the LightGBM assistant of the IRIS annotation tool does.

The scribbles are a single-band raster on the scene's grid (same CRS, transform and size) in
any label scheme; unlabelled pixels hold 255 (or any value the scheme does not define). Only
the window around the scribbles (plus the features' context) is read to fit the model; the
prediction runs through the standard engine (:func:`s2clouds.inference.predict.predict_scene`),
so the output is the usual canonical COG, written atomically.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from s2clouds.errors import CRSMismatchError, DatasetError, SceneFormatError
from s2clouds.inference.predict import (
    PredictionResult,
    PredictOptions,
    check_output_is_not_input,
    open_scene,
    predict_scene,
)
from s2clouds.io.grid import Grid, Window
from s2clouds.io.scenes import Scene
from s2clouds.labels import NODATA, to_canonical
from s2clouds.models.pixel import PixelModel
from s2clouds.train.pixel import PixelTrainConfig, fit_scribbles

DEFAULT_BANDS = ("B02", "B03", "B04", "B08")


@dataclass
class AnnotationResult:
    """The predicted mask, the fitted model's path and the scribbled pixels per class."""

    prediction: PredictionResult
    model_path: Path | None
    scribbled: dict[int, int]


def read_scribbles(path: str | Path, grid: Grid, scheme: str) -> np.ndarray:
    """Scribbles (H, W) uint8 in canonical classes (255 = unlabelled) from a single-band
    raster that must lie on ``grid`` (:class:`CRSMismatchError` otherwise)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            if ds.count != 1:
                raise SceneFormatError(
                    f"scribbles {path} have {ds.count} bands; give one band of class values"
                )
            same_grid = ds.crs == grid.crs and ds.transform == grid.transform
            if not same_grid or (ds.height, ds.width) != grid.shape:
                raise CRSMismatchError(
                    f"scribbles {path} are not on the scene's grid (CRS {ds.crs}, "
                    f"{ds.height} x {ds.width} px vs CRS {grid.crs}, {grid.height} x "
                    f"{grid.width} px); draw them on the scene or resample them onto it"
                )
            values = ds.read(1)
    except RasterioIOError as exc:
        raise SceneFormatError(f"cannot read scribbles {path} ({exc}); check the file") from exc
    return to_canonical(values, scheme, unknown="nodata")


def scribble_window(scribbles: np.ndarray, halo: int) -> Window:
    """The smallest window holding every scribbled pixel, grown by ``halo`` pixels."""
    rows, cols = np.nonzero(scribbles != NODATA)
    if rows.size == 0:
        raise DatasetError("the scribbles label no pixel (all unlabelled); label some pixels")
    height, width = scribbles.shape
    top, left = max(int(rows.min()) - halo, 0), max(int(cols.min()) - halo, 0)
    bottom = min(int(rows.max()) + halo + 1, height)
    right = min(int(cols.max()) + halo + 1, width)
    return Window(top, left, bottom - top, right - left)


def fit_on_scene(
    scene: Scene, scribbles: np.ndarray, config: PixelTrainConfig, name: str
) -> PixelModel:
    """A pixel model fitted on the scribbled pixels of ``scene`` (only their window is read)."""
    selected = scene.select(config.bands)
    window = scribble_window(scribbles, halo=16)
    image = selected.read(window)
    return fit_scribbles(image, scribbles[window.slices], config.bands, config=config, name=name)


def annotate(
    source: str | Path,
    scribbles: str | Path,
    output: str | Path,
    *,
    scheme: str = "canonical",
    bands: Sequence[str] = DEFAULT_BANDS,
    rounds: int = 100,
    model_path: str | Path | None = None,
    options: PredictOptions | None = None,
) -> AnnotationResult:
    """Fit a pixel model on ``scribbles`` (a raster on ``source``'s grid, classes of
    ``scheme``, 255 unlabelled) over ``bands`` and write the scene's mask to ``output``.

    The model is saved to ``model_path`` (``.lgbm``, with its spec) when given, so that it
    can mask further scenes (``s2clouds predict --model``). ``options`` are the usual
    prediction options (resolution, block, probabilities, quicklook, ...); their ``model``
    is replaced by the fitted one.
    """
    options = options or PredictOptions()
    check_output_is_not_input(source, output)
    scene = open_scene(source, options)
    labels = read_scribbles(scribbles, scene.grid, scheme)
    config = PixelTrainConfig(bands=tuple(bands), rounds=rounds)
    model = fit_on_scene(scene, labels, config, name=Path(model_path or "scribbles").stem)
    counts = np.bincount(labels[labels != NODATA], minlength=4)
    scribbled = {c: int(n) for c, n in enumerate(counts) if n}
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(model_path) if model_path else Path(tmp) / "scribbles.lgbm"
        model.save(saved)
        result = predict_scene(scene, output, replace(options, model=str(saved)))
    return AnnotationResult(result, Path(model_path) if model_path else None, scribbled)
