"""Annotation from scribbles: fit a pixel model on the pixels a person labelled in a scene
and predict the rest of it, as the LightGBM assistant of the IRIS annotation tool does.

The scribbles are a single-band raster on the scene's grid (same CRS, transform and size; a
raster without georeference, e.g. a PNG from an image editor, only needs the same size) in
any label scheme; unlabelled pixels hold 255, the raster's nodata value, or any value the
scheme does not define. Features are computed block by block, only for blocks that hold
scribbles (plus the features' context), so memory stays bounded on whole tiles; the
prediction runs through the standard engine (:func:`s2clouds.inference.predict.predict_scene`),
so the output is the usual canonical COG, written atomically.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from s2clouds.errors import CRSMismatchError, DatasetError, SceneFormatError
from s2clouds.inference.options import PredictOptions
from s2clouds.inference.outputs import check_scene_outputs
from s2clouds.inference.predict import predict_scene
from s2clouds.inference.records import PredictionResult
from s2clouds.inference.window import expand_window
from s2clouds.io.grid import Grid, Window
from s2clouds.io.limits import check_regular_file
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import read_scene
from s2clouds.labels import NODATA, to_canonical
from s2clouds.models.base import N_CLASSES
from s2clouds.models.pixel_features import features_halo
from s2clouds.models.weights import sidecar_path
from s2clouds.train.pixel import PixelTrainConfig, fit_rows, scribble_config, scribble_rows

DEFAULT_BANDS = ("B02", "B03", "B04", "B08")


@dataclass
class AnnotationResult:
    """The predicted mask, the fitted model's path and the scribbled pixels per class that
    the model was fitted on (scribbles on no-data pixels are left out)."""

    prediction: PredictionResult
    model_path: Path | None
    scribbled: dict[int, int]


def read_scribbles(path: str | Path, grid: Grid, scheme: str) -> np.ndarray:
    """Scribbles (H, W) uint8 in canonical classes (255 = unlabelled) from a single-band
    raster on ``grid`` (:class:`CRSMismatchError` otherwise); the raster's nodata value
    means unlabelled."""
    import rasterio
    from rasterio.errors import RasterioIOError

    check_regular_file(path)
    try:
        with rasterio.open(path) as ds:
            if ds.count != 1:
                raise SceneFormatError(
                    f"scribbles {path} have {ds.count} bands; give one band of class values"
                )
            check_scribble_grid(path, ds.crs, ds.transform, (ds.height, ds.width), grid)
            values, nodata = ds.read(1), ds.nodata
    except RasterioIOError as exc:
        raise SceneFormatError(f"cannot read scribbles {path} ({exc}); check the file") from exc
    canonical = to_canonical(values, scheme, unknown="nodata")
    if nodata is not None:
        canonical[values == nodata] = NODATA
    return canonical


def check_scribble_grid(
    path: str | Path, crs: Any, transform: Any, shape: tuple[int, int], grid: Grid
) -> None:
    """Refuse scribbles whose size differs from ``grid``'s, or whose georeference (when
    they have one) puts them elsewhere."""
    georeferenced = crs is not None
    same_place = not georeferenced or (crs == grid.crs and transform.almost_equals(grid.transform))
    if shape != grid.shape or not same_place:
        raise CRSMismatchError(
            f"scribbles {path} are not on the scene's grid (CRS {crs}, {shape[0]} x "
            f"{shape[1]} px vs CRS {grid.crs}, {grid.height} x {grid.width} px); draw them "
            "on the scene or resample them onto it"
        )


def scribbled_blocks(scribbles: np.ndarray, block: int) -> list[Window]:
    """The ``block`` x ``block`` windows of the scribbles' grid that hold a scribbled pixel."""
    height, width = scribbles.shape
    grid = Grid(None, Affine.identity(), height, width)
    return [w for w in grid.windows(block) if np.any(scribbles[w.slices] != NODATA)]


def scene_scribble_rows(
    scene: Scene, scribbles: np.ndarray, config: PixelTrainConfig, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels of the scribbled pixels of ``scene``, computed per block
    (with the features' context around it) for the blocks that hold scribbles."""
    selected = scene.select(config.bands)
    halo = features_halo(config.resolved_features())
    height, width = scribbles.shape
    rows, labels = [], []
    for window in scribbled_blocks(scribbles, block):
        outer = expand_window(window, halo, height, width)
        core = np.full((outer.height, outer.width), NODATA, np.uint8)
        core[window.within(outer)] = scribbles[window.slices]
        x, y = scribble_rows(selected.read(outer), core, config)
        rows.append(x)
        labels.append(y)
    if not rows:
        raise DatasetError("the scribbles label no pixel (all unlabelled); label some pixels")
    return np.concatenate(rows), np.concatenate(labels)


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
    scene = read_scene(source, **options.read.as_kwargs())
    model_files = {"the model (model_path=)": Path(model_path) if model_path else None}
    if model_path:
        model_files["the model's spec (model_path=, .json)"] = sidecar_path(model_path)
    check_scene_outputs(scene, Path(output), options.output, inputs=[scribbles], extra=model_files)
    labels = read_scribbles(scribbles, scene.grid, scheme)
    config = scribble_config(bands, PixelTrainConfig(rounds=rounds))
    rows, targets = scene_scribble_rows(scene, labels, config)
    model = fit_rows(
        rows,
        targets,
        config,
        name=Path(model_path or "scribbles").stem,
        resolution=scene.grid.resolution,
    )
    counts = np.bincount(targets, minlength=N_CLASSES)  # the pixels the model was fitted on
    scribbled = {c: int(n) for c, n in enumerate(counts) if n}
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(model_path) if model_path else Path(tmp) / "scribbles.lgbm"
        model.save(saved)
        fitted = replace(options, run=replace(options.run, model=str(saved)))
        result = predict_scene(scene, output, fitted)
    return AnnotationResult(result, Path(model_path) if model_path else None, scribbled)
