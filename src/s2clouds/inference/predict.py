"""Predict canonical cloud/shadow masks for scenes, window by window, in bounded memory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.inference.tiling import blend_tiles
from s2clouds.io.grid import Window
from s2clouds.io.scenes import Scene, read_scene
from s2clouds.io.write import check_writable, mask_writer, probability_writer
from s2clouds.labels.schemes import CANONICAL_CLASSES, NODATA
from s2clouds.models.base import N_CLASSES, CloudModel
from s2clouds.models.registry import DEFAULT_MODEL, get_model


@dataclass(frozen=True)
class PredictOptions:
    """Everything a prediction run can be told, in one place.

    ``resolution``: output grid in metres (10, 20 or 60; None = the finest input band).
    ``block``: output window edge in pixels processed at once (memory grows with block^2).
    ``tile``/``overlap``: model tiles inside a block for models with a fixed input size.
    ``probabilities``: also write per-class probabilities (percent) beside the mask.
    """

    model: str = DEFAULT_MODEL
    resolution: float | None = None
    bands: tuple[str, ...] | None = None
    level: str | None = None
    scale: str | None = None
    block: int = 1024
    tile: int = 512
    overlap: int = 64
    probabilities: bool = False
    quicklook: Path | None = None
    overwrite: bool = True
    progress: bool = True


@dataclass
class PredictionResult:
    """What a prediction produced: paths, class shares of valid pixels, timing."""

    output: Path
    probabilities: Path | None
    quicklook: Path | None
    class_fractions: dict[str, float]
    valid_fraction: float
    shape: tuple[int, int]
    resolution: float
    seconds: float
    model: str
    extra: dict[str, Any] = field(default_factory=dict)


def scene_context(scene: Scene) -> dict[str, Any]:
    """The facts about a scene that models may use (resolution, sun angles)."""
    context: dict[str, Any] = {"resolution": scene.grid.resolution, "level": scene.level}
    if scene.angles is not None:
        context["sun_zenith"] = scene.angles.sun_zenith
        context["sun_azimuth"] = scene.angles.sun_azimuth
    return context


def model_halo(model: CloudModel, context: dict[str, Any]) -> int:
    """Pixels of context a model needs around each block (its own estimate when it has one)."""
    required = getattr(model, "required_halo", None)
    return max(model.halo, int(required(context))) if callable(required) else model.halo


def predict_array(
    model: CloudModel,
    image: np.ndarray,
    context: dict[str, Any],
    *,
    tile: int = 512,
    overlap: int = 64,
) -> np.ndarray:
    """Class probabilities (4, H, W) float32 for reflectance (C, H, W) in ``model.bands`` order.

    Models with a fixed input size (a ``tile_size`` attribute) run on overlapping tiles blended
    with feathered weights; others see the whole array at once.
    """

    def run(x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x, context)

    tile_size = getattr(model, "tile_size", None)
    if tile_size is None:
        return run(image).astype(np.float32, copy=False)
    size = int(tile_size or tile)
    return blend_tiles(image, run, N_CLASSES, tile=size, overlap=min(overlap, size // 4))


def probabilities_to_mask(probs: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Canonical mask (H, W) uint8: most probable class, 255 where any band of ``image`` is NaN."""
    mask = np.argmax(probs, axis=0).astype(np.uint8)
    mask[~np.all(np.isfinite(image), axis=0)] = NODATA
    return mask


def expand_window(window: Window, halo: int, height: int, width: int) -> Window:
    """``window`` grown by ``halo`` pixels on each side, clamped to the scene."""
    row, col = max(0, window.row - halo), max(0, window.col - halo)
    bottom = min(height, window.row + window.height + halo)
    right = min(width, window.col + window.width + halo)
    return Window(row, col, bottom - row, right - col)


def predict_blocks(
    scene: Scene, model: CloudModel, options: PredictOptions
) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """Yield ``(window, mask (h, w) uint8, probabilities (4, h, w) float32)`` per output block."""
    context = scene_context(scene)
    halo = model_halo(model, context)
    height, width = scene.grid.shape
    for window in scene.grid.windows(options.block):
        outer = expand_window(window, halo, height, width)
        image = scene.read(outer)
        probs = predict_array(model, image, context, tile=options.tile, overlap=options.overlap)
        r0, c0 = window.row - outer.row, window.col - outer.col
        core = (slice(None), slice(r0, r0 + window.height), slice(c0, c0 + window.width))
        probs = probs[core]
        yield window, probabilities_to_mask(probs, image[core]), probs


def predict_scene(
    scene: Scene, output: str | Path, options: PredictOptions | None = None
) -> PredictionResult:
    """Predict a scene and write the canonical mask COG (and optional probabilities/quicklook)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    options = options or PredictOptions()
    output = Path(output)
    check_writable(output, overwrite=options.overwrite)
    start = time.perf_counter()
    model = get_model(options.model, scene.bands)
    scene = scene.select(model.bands)
    scene.check_radiometry()
    tags = {"MODEL": model.name, "SOURCE": scene.product_id, "BANDS": ",".join(model.bands)}
    counts = np.zeros(256, dtype=np.int64)
    prob_path = output.with_name(output.stem + ".proba.tif") if options.probabilities else None
    n_windows = len(list(scene.grid.windows(options.block)))
    with (
        mask_writer(output, scene.grid, tags=tags, overwrite=options.overwrite) as mask_out,
        _optional_probability_writer(prob_path, scene, tags, options) as prob_out,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} windows"),
            TimeRemainingColumn(),
            disable=not options.progress,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(f"{scene.product_id}", total=n_windows)
        for window, mask, probs in predict_blocks(scene, model, options):
            mask_out.write(window, mask)
            if prob_out is not None:
                prob_out.write(window, probability_percent(probs, mask))
            counts += np.bincount(mask.ravel(), minlength=256)
            progress.advance(task)
    quicklook = None
    if options.quicklook is not None:
        from s2clouds.inference.quicklook import write_quicklook

        quicklook = write_quicklook(scene, output, options.quicklook)
    total_valid = counts[: len(CANONICAL_CLASSES)].sum()
    fractions = {
        name: float(counts[v] / total_valid) if total_valid else 0.0
        for v, name in CANONICAL_CLASSES.items()
    }
    return PredictionResult(
        output=output,
        probabilities=prob_path,
        quicklook=quicklook,
        class_fractions=fractions,
        valid_fraction=float(total_valid / max(1, counts.sum())),
        shape=scene.grid.shape,
        resolution=scene.grid.resolution,
        seconds=time.perf_counter() - start,
        model=model.name,
    )


def probability_percent(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Probabilities (4, h, w) float -> uint8 percent, 255 where the mask is no data."""
    out = np.clip(np.rint(probs * 100), 0, 100).astype(np.uint8)
    out[:, mask == NODATA] = NODATA
    return out


def _optional_probability_writer(
    path: Path | None, scene: Scene, tags: dict[str, str], options: PredictOptions
) -> Any:
    if path is None:
        return contextlib.nullcontext()
    return probability_writer(path, scene.grid, tags=tags, overwrite=options.overwrite)


def predict(
    source: str | Path | np.ndarray, output: str | Path, options: PredictOptions | None = None
) -> PredictionResult:
    """Read ``source`` (see :func:`~s2clouds.io.scenes.read_scene`) and predict its mask."""
    options = options or PredictOptions()
    if isinstance(source, (str, Path)) and Path(output).resolve() == Path(source).resolve():
        raise OutputError("the output path is the input path; choose another -o")
    scene = read_scene(
        source,
        bands=options.bands,
        resolution=options.resolution,
        scale=options.scale,
        level=options.level,
    )
    return predict_scene(scene, output, options)
