"""Predict canonical cloud/shadow masks for scenes, window by window, in bounded memory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.inference.tiling import blend_tiles
from s2clouds.io.grid import Window
from s2clouds.io.paths import check_outputs
from s2clouds.io.scenes import Scene, SunAngles, read_scene
from s2clouds.io.stac import looks_like_stac_item, read_stac_item
from s2clouds.io.write import check_writable, mask_writer, probability_writer
from s2clouds.labels.schemes import CANONICAL_CLASSES, NODATA
from s2clouds.models.base import N_CLASSES, CloudModel
from s2clouds.models.registry import DEFAULT_MODEL, get_model

PROBA_SUFFIX = ".proba.tif"
#: how errors name the mask output
MASK_OUTPUT = "the mask (-o)"


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


def predict_window(
    scene: Scene,
    model: CloudModel,
    window: Window,
    options: PredictOptions,
    context: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask (h, w) uint8 and probabilities (4, h, w) float32 of one output ``window``.

    The window is read with the model's halo of context around it (clamped to the scene), so
    the result does not depend on which other windows are computed, or where: this is the unit
    of work that the batch engines (in-process or on a Dask cluster) distribute.
    """
    context = scene_context(scene) if context is None else context
    height, width = scene.grid.shape
    outer = expand_window(window, model_halo(model, context), height, width)
    image = scene.read(outer)
    probs = predict_array(model, image, context, tile=options.tile, overlap=options.overlap)
    core = (slice(None), *window.within(outer))
    probs = probs[core]
    return probabilities_to_mask(probs, image[core]), probs


def predict_blocks(
    scene: Scene, model: CloudModel, options: PredictOptions
) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """Yield ``(window, mask (h, w) uint8, probabilities (4, h, w) float32)`` per output block."""
    context = scene_context(scene)
    for window in scene.grid.windows(options.block):
        mask, probs = predict_window(scene, model, window, options, context)
        yield window, mask, probs


def prepare_scene(scene: Scene, options: PredictOptions) -> tuple[Scene, CloudModel]:
    """Build the model for ``scene``, keep the bands it needs, and check the radiometry.

    Raises :class:`~s2clouds.errors.BandError`/``ModelError``/``RadiometryError`` before any
    output is opened. Returns the scene restricted to ``model.bands`` and the model.
    """
    model = get_model(options.model, scene.bands, scene.level)
    scene = scene.select(model.bands)
    scene.check_radiometry()
    return with_sun_angles(scene, model), model


def with_sun_angles(scene: Scene, model: CloudModel) -> Scene:
    """``scene`` with sun angles estimated once from a whole-scene overview, when it has
    none and ``model`` can estimate them (``estimate_sun_angles(overview, resolution)``)."""
    estimate = getattr(model, "estimate_sun_angles", None)
    if scene.angles is not None or not callable(estimate):
        return scene
    overview, resolution = scene.overview()
    zenith, azimuth = estimate(overview, resolution)
    angles = SunAngles(float(zenith), float(azimuth), source="estimated from the image")
    return replace(scene, angles=angles)


class SceneSink:
    """Where the windows of one scene go: the mask COG, optional probabilities, class counts.

    A context manager around the writers (see :func:`~s2clouds.io.write.mask_writer`): on a
    clean exit the outputs are finished as COGs and renamed into place; on an exception nothing
    appears at ``output``. Windows may arrive in any order. After the ``with`` block,
    :meth:`result` gives the :class:`PredictionResult` (writing the quicklook if asked for).
    """

    def __init__(
        self, scene: Scene, model_name: str, output: str | Path, options: PredictOptions
    ) -> None:
        self.scene, self.model_name, self.options = scene, model_name, options
        self.output = Path(output)
        self.probabilities = probabilities_path(self.output) if options.probabilities else None
        self.counts = np.zeros(256, dtype=np.int64)
        self._stack = contextlib.ExitStack()
        self._mask_out: Any = None
        self._prob_out: Any = None

    def __enter__(self) -> SceneSink:
        tags = {
            "MODEL": self.model_name,
            "SOURCE": self.scene.product_id,
            "BANDS": ",".join(self.scene.bands),
        }
        overwrite = self.options.overwrite
        with contextlib.ExitStack() as stack:
            self._mask_out = stack.enter_context(
                mask_writer(self.output, self.scene.grid, tags=tags, overwrite=overwrite)
            )
            if self.probabilities is not None:
                self._prob_out = stack.enter_context(
                    probability_writer(
                        self.probabilities, self.scene.grid, tags=tags, overwrite=overwrite
                    )
                )
            self._stack = stack.pop_all()
        return self

    def add(self, window: Window, mask: np.ndarray, probs_percent: np.ndarray | None) -> None:
        """Write one window: ``mask`` (h, w) uint8 and, when probabilities are written,
        ``probs_percent`` (4, h, w) uint8 percent (see :func:`probability_percent`)."""
        self._mask_out.write(window, mask)
        if self._prob_out is not None:
            if probs_percent is None:
                raise OutputError("probabilities were requested but a window came without them")
            self._prob_out.write(window, probs_percent)
        self.counts += np.bincount(mask.ravel(), minlength=256)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    def result(self, seconds: float) -> PredictionResult:
        """The finished prediction; writes the quicklook PNG when ``options.quicklook`` is set."""
        quicklook = None
        if self.options.quicklook is not None:
            from s2clouds.inference.quicklook import write_quicklook

            quicklook = write_quicklook(self.scene, self.output, self.options.quicklook)
        counts = self.counts
        total_valid = counts[: len(CANONICAL_CLASSES)].sum()
        fractions = {
            name: float(counts[v] / total_valid) if total_valid else 0.0
            for v, name in CANONICAL_CLASSES.items()
        }
        return PredictionResult(
            output=self.output,
            probabilities=self.probabilities,
            quicklook=quicklook,
            class_fractions=fractions,
            valid_fraction=float(total_valid / max(1, counts.sum())),
            shape=self.scene.grid.shape,
            resolution=self.scene.grid.resolution,
            seconds=seconds,
            model=self.model_name,
        )


def window_progress(enabled: bool) -> Any:
    """A rich progress display for windows of scenes (transient; hidden when not ``enabled``)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def predict_scene(
    scene: Scene, output: str | Path, options: PredictOptions | None = None
) -> PredictionResult:
    """Predict a scene in this process and write the mask COG (and probabilities/quicklook).

    Windows are computed one after another (memory grows with ``options.block``, not with the
    scene); see :mod:`s2clouds.inference.batch` to spread them over a Dask cluster.
    """
    options = options or PredictOptions()
    output = Path(output)
    check_scene_outputs(scene, output, options)
    start = time.perf_counter()
    scene, model = prepare_scene(scene, options)
    n_windows = len(list(scene.grid.windows(options.block)))
    with (
        SceneSink(scene, model.name, output, options) as sink,
        window_progress(options.progress) as progress,
    ):
        task = progress.add_task(f"{scene.product_id} windows", total=n_windows)
        for window, mask, probs in predict_blocks(scene, model, options):
            sink.add(window, mask, probability_percent(probs, mask) if sink.probabilities else None)
            progress.advance(task)
    return sink.result(time.perf_counter() - start)


def probability_percent(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Probabilities (4, h, w) float -> uint8 percent, 255 where the mask is no data."""
    out = np.clip(np.rint(probs * 100), 0, 100).astype(np.uint8)
    out[:, mask == NODATA] = NODATA
    return out


def predict(
    source: str | Path | np.ndarray, output: str | Path, options: PredictOptions | None = None
) -> PredictionResult:
    """Read ``source`` (see :func:`open_scene`) and predict its mask in this process."""
    options = options or PredictOptions()
    return predict_scene(open_scene(source, options), output, options)


def probabilities_path(output: Path) -> Path:
    """Where the probabilities of the mask ``output`` go: ``<stem>.proba.tif`` beside it."""
    return output.with_name(output.stem + PROBA_SUFFIX)


def planned_outputs(output: Path, options: PredictOptions) -> dict[str, Path | None]:
    """The files a prediction writes, by how errors name them (None: not written)."""
    return {
        MASK_OUTPUT: output,
        "the probabilities (--probabilities, named after -o)": (
            probabilities_path(output) if options.probabilities else None
        ),
        "the quicklook (--quicklook)": options.quicklook,
    }


def check_scene_outputs(
    scene: Scene,
    output: Path,
    options: PredictOptions,
    *,
    inputs: Iterable[str | Path] = (),
    extra: Mapping[str, Path | None] | None = None,
) -> None:
    """Before any work: refuse outputs (:func:`planned_outputs` and ``extra``) that are a file
    of ``scene`` or of ``inputs`` (see :func:`~s2clouds.io.paths.check_outputs`), that
    coincide, or whose folder is missing or not writable (the writers refuse an existing mask
    without ``options.overwrite``)."""
    outputs = {**planned_outputs(output, options), **(extra or {})}
    check_outputs(outputs, [*scene.input_files(), *inputs])
    check_writable(output, overwrite=options.overwrite)
    for option, path in outputs.items():
        if path is not None and option != MASK_OUTPUT:
            check_writable(Path(path))


def open_scene(source: str | Path | np.ndarray, options: PredictOptions) -> Scene:
    """Open ``source`` with the reading options of ``options``: a STAC item JSON (see
    :func:`~s2clouds.io.stac.read_stac_item`) or anything :func:`read_scene` accepts."""
    reading: dict[str, Any] = {
        "bands": options.bands,
        "resolution": options.resolution,
        "scale": options.scale,
        "level": options.level,
    }
    if isinstance(source, (str, Path)) and looks_like_stac_item(source):
        return read_stac_item(source, **reading)
    return read_scene(source, **reading)
