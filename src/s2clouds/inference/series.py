"""Time-series masks: predict every date of a place with the evidence of the other dates.

:func:`predict_series` opens every input (paths, STAC items, arrays as
:func:`~s2clouds.io.scenes.read_scene` reads them), puts them on the first input's grid, and
goes over that grid window by window (window x dates in memory, never whole scenes x dates;
windows of :data:`SERIES_BLOCK` px, run by the engine of every driver, in this process or on
Dask): the single-date model gives each date's probabilities (as
:func:`~s2clouds.inference.window.predict_window` computes them for ``predict``), then
:func:`~s2clouds.models.series.refine_series` refines them with the other dates. One mask per
date is written into the output folder, named as a batch names them
(``<product_id>_cloudmask.tif``), plus ``series_summary.json`` (per date: cloud and shadow
shares single-date vs series).

Grids: every date must share the first input's CRS; other grids are read at the first
input's resolution and placed at their nearest whole-pixel offset (pixels of the first grid
that a date does not cover are no data for it). Inputs that do not overlap the first are
refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.bands import canonical_band_names
from s2clouds.errors import (
    BandError,
    CRSMismatchError,
    OutputError,
    S2CloudsError,
    ShapeMismatchError,
    detaching,
)
from s2clouds.inference.distributed import ClusterOptions, open_engine
from s2clouds.inference.engine import Job
from s2clouds.inference.options import PredictOptions, RunOptions
from s2clouds.inference.outputs import check_scene_outputs, mask_name
from s2clouds.inference.sink import SceneSink, run_jobs
from s2clouds.inference.window import (
    expand_window,
    full_read_window,
    predict_window,
    probabilities_to_mask,
    probability_percent,
    with_shadow_reach,
    with_sun_angles,
)
from s2clouds.io.dates import acquisition_date
from s2clouds.io.grid import Grid, Window
from s2clouds.io.parts import Expected, WindowParts, fingerprint
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import read_scene
from s2clouds.io.write import atomic_path
from s2clouds.labels.schemes import NODATA
from s2clouds.models.base import N_CLASSES, CloudModel, ModelContext
from s2clouds.models.cache import cached_model
from s2clouds.models.registry import get_model
from s2clouds.models.series import (
    SERIES_BANDS,
    SeriesRules,
    refine_series,
    require_series_bands,
)
from s2clouds.models.shadow_geometry import sun_from_context

#: what a series run reports (its dates and grid): silent unless a handler is set
logger = logging.getLogger(__name__)
#: the summary of a series run, in its output folder
SERIES_SUMMARY = "series_summary.json"
#: window edge (px) of a series run, on a grid anchored at the first date's corner: memory
#: grows with window^2 x dates. The refinement makes some decisions per window (each date's
#: radiometric offset from its reference, the direction its clouds cast shadow in), so the
#: windows are fixed, whatever ``--block`` says: masks never depend on it
SERIES_BLOCK = 256


@dataclass(frozen=True)
class Dated:
    """One date of the series: its scene (bands the run needs, sun angles), its model
    context, and where its grid's corner lies on the series grid (rows, cols)."""

    scene: Scene
    context: ModelContext
    offset: tuple[int, int]

    def on_own_grid(self, window: Window) -> Window | None:
        """The part of ``window`` of the series grid that this date covers, on the date's own
        grid, or None when it covers none of it."""
        rows, cols = self.offset
        height, width = self.scene.grid.shape
        top, left = max(window.row - rows, 0), max(window.col - cols, 0)
        bottom = min(window.row + window.height - rows, height)
        right = min(window.col + window.width - cols, width)
        if bottom <= top or right <= left:
            return None
        return Window(top, left, bottom - top, right - left)

    def placement(self, own: Window) -> Window:
        """Window ``own`` of the date's grid on the series grid."""
        rows, cols = self.offset
        return Window(own.row + rows, own.col + cols, own.height, own.width)


@dataclass
class SeriesDateRecord:
    """What the series run did with one date."""

    input: str
    product_id: str
    output: str
    day: float | None
    single: dict[str, float] = field(default_factory=dict)
    series: dict[str, float] = field(default_factory=dict)
    refined_percent: float = 0.0


@dataclass
class SeriesResult:
    """Records of every date, the summary path, the model and the seconds taken."""

    dates: list[SeriesDateRecord]
    summary: Path
    model: str
    seconds: float


def date_days(scenes: Sequence[Scene]) -> list[float] | None:
    """Day numbers (from the first) of the scenes' acquisition dates
    (:func:`~s2clouds.io.dates.acquisition_date`); None unless every scene has one."""
    days: list[dt.date] = []
    for scene in scenes:
        found = acquisition_date(scene)
        if found is None:
            return None
        days.append(found)
    return [float((d - days[0]).days) for d in days]


def grid_offset(grid: Grid, target: Grid, where: str, first: str) -> tuple[int, int]:
    """(rows, cols) of ``grid``'s corner on ``target`` (same CRS and resolution), to the
    nearest pixel; :class:`CRSMismatchError` when they differ in CRS or do not overlap,
    :class:`ShapeMismatchError` for arrays (no georeference) of another size."""
    if grid.crs != target.crs:
        raise CRSMismatchError(
            f"{where} is in {grid.crs}, the first date {first} in {target.crs}; a series must "
            "share one CRS: reproject the dates onto one grid first (e.g. gdalwarp -t_srs)"
        )
    if grid.crs is None and grid.shape != target.shape:
        raise ShapeMismatchError(
            f"{where} is {grid.shape} px and {first} {target.shape} px, and arrays have no "
            "georeference to align them by: give arrays of one size"
        )
    offset = grid.offset_on(target, exact=False)
    if offset is None:
        raise CRSMismatchError(
            f"{where} is rotated or {first} is; a series needs north-up grids: warp the "
            "dates onto one grid first (e.g. gdalwarp)"
        )
    rows, cols = offset
    if (
        rows >= target.height
        or cols >= target.width
        or rows + grid.height <= 0
        or cols + grid.width <= 0
    ):
        raise CRSMismatchError(
            f"{where} does not overlap the first date {first} (offset {rows}, {cols} px of "
            f"a {target.height} x {target.width} px grid); give scenes of one place"
        )
    return rows, cols


def open_series(
    sources: Sequence[str | Path | np.ndarray], options: PredictOptions
) -> tuple[list[Dated], CloudModel, tuple[str, ...]]:
    """Open the dates on the first input's grid, build the model (from the first date's
    bands and level) and check every date holds the bands the run needs. Returns the dates,
    the model and the band names the series reads (model bands, then the series' bands)."""
    if not sources:
        raise S2CloudsError("a series needs at least one input")
    scenes = [read_scene(s, **options.read.as_kwargs()) for s in sources]
    first = scenes[0]
    model = get_model(options.run.model, first.bands, first.level)
    extra = [b for b in (*SERIES_BANDS, "B10") if b not in model.bands and b in first.bands]
    bands = (*model.bands, *extra)
    if len(scenes) > 1:
        require_series_bands(
            bands,
            f"{first.product_id} is one; give multispectral scenes with SWIR, or predict the "
            "dates one by one without series=True",
        )
    target = first.grid
    dates = []
    for i, scene in enumerate(scenes):
        lacking = [b for b in bands if b not in scene.bands]
        if lacking:
            raise BandError(
                f"date {i + 1} ({scene.product_id}) lacks band(s) {', '.join(lacking)} that "
                f"the first date {first.product_id} has and the series needs; every date "
                f"must hold {', '.join(bands)}"
            )
        scene = scene.select(bands)
        if scene.grid.resolution != target.resolution:
            scene = replace(scene, grid=scene.grid.at_resolution(target.resolution))
        offset = grid_offset(
            scene.grid, target, f"date {i + 1} ({scene.product_id})", first.product_id
        )
        scene.check_radiometry()
        scene = with_sun_angles(scene, model)
        if max(scene.grid.shape) > SERIES_BLOCK:
            # where this date's clouds can cast shadow, mapped once: the windows then read
            # no 2.5 km halo each (a scene in one window needs no map; the choice does not
            # depend on --block, so neither do the masks)
            reach = with_shadow_reach(scene.select(model.bands), model, 0).priors
            scene = replace(scene, priors=reach)
        dates.append(Dated(scene, ModelContext.of_scene(scene), offset))
    return dates, model, bands


def _series_outputs(dates: Sequence[Dated], outdir: Path, options: PredictOptions) -> list[Path]:
    outputs: list[Path] = []
    inputs = [f for d in dates for f in d.scene.input_files()]
    for d in dates:
        output = outdir / mask_name(d.scene.product_id)
        if output in outputs:
            raise OutputError(
                f"two dates would write {output.name} (same product id {d.scene.product_id}); "
                "rename one input"
            )
        check_scene_outputs(
            d.scene,
            output,
            options.output,
            inputs=inputs,
            extra={"the series summary": outdir / SERIES_SUMMARY},
        )
        outputs.append(output)
    return outputs


def _shares(counts: np.ndarray) -> dict[str, float]:
    valid = counts[:4].sum()
    if not valid:
        return {
            "cloud_percent": 0.0,
            "thin_percent": 0.0,
            "shadow_percent": 0.0,
            "valid_percent": 0.0,
        }
    return {
        "cloud_percent": round(100 * float(counts[1] + counts[2]) / valid, 3),
        "thin_percent": round(100 * float(counts[2]) / valid, 3),
        "shadow_percent": round(100 * float(counts[3]) / valid, 3),
        "valid_percent": round(100 * float(valid) / max(1, counts.sum()), 3),
    }


@dataclass(frozen=True)
class SeriesPlan:
    """What :func:`series_window` needs (picklable: scenes hold file paths; on a cluster
    ``model`` is the model's name, built once per worker)."""

    dates: tuple[Dated, ...]
    model: CloudModel | str = field(repr=False)
    model_bands: tuple[str, ...]
    names: tuple[str, ...]
    rules: SeriesRules
    run: RunOptions
    sun: tuple[tuple[float, float] | None, ...]
    resolution: float
    days: tuple[float, ...] | None
    probabilities: bool = False

    @property
    def grid(self) -> Grid:
        """The series grid: the first date's."""
        return self.dates[0].scene.grid

    @property
    def halo(self) -> int:
        """Pixels around a window that decide the series refinement of it."""
        return self.rules.context_px if len(self.dates) > 1 else 0


@dataclass
class SeriesWindow:
    """One window of every date: masks (T, h, w) uint8, probabilities (T, 4, h, w) uint8
    percent or None, single-date mask counts (T, 256) int64 and refined pixels (T,) int64."""

    masks: np.ndarray
    probs: np.ndarray | None
    single: np.ndarray
    refined: np.ndarray


@detaching
def series_window(plan: SeriesPlan, window: Window) -> SeriesWindow:
    """One window of the series grid for every date (the unit of work of every engine):
    each date's single-date probabilities (as :func:`~s2clouds.inference.window.predict_window`
    computes them), refined with the other dates. Library errors are
    :func:`~s2clouds.errors.detached` so that they cross a Dask cluster intact."""
    model = (
        cached_model(plan.model, plan.model_bands) if isinstance(plan.model, str) else plan.model
    )
    outer = expand_window(window, plan.halo, *plan.grid.shape)
    dated = [_date_window(d, model, outer, plan.run) for d in plan.dates]
    image_stack = np.stack([image for image, _ in dated])
    prob_stack = np.stack([probs for _, probs in dated])
    refined = refine_series(
        image_stack,
        prob_stack,
        plan.names,
        plan.rules,
        resolution=plan.resolution,
        sun=list(plan.sun),
        days=None if plan.days is None else list(plan.days),
    )
    core = (slice(None), *window.within(outer))
    n = len(plan.dates)
    masks = np.empty((n, *window.shape), np.uint8)
    percent = np.empty((n, 4, *window.shape), np.uint8) if plan.probabilities else None
    single = np.zeros((n, 256), np.int64)
    for t in range(n):
        image = image_stack[t][core]
        single[t] = np.bincount(
            probabilities_to_mask(prob_stack[t][core], image).ravel(), minlength=256
        )
        probs = refined.probs[t][core]
        masks[t] = probabilities_to_mask(probs, image)
        if percent is not None:
            percent[t] = probability_percent(probs, masks[t])
    counted = refined.refined[core].sum(axis=(1, 2)).astype(np.int64)
    return SeriesWindow(masks, percent, single, counted)


class SeriesOutput:
    """The sink of a series job: one :class:`SceneSink` per date, the single-date counts,
    the refined pixels, and the error that failed the job (None). With ``parts``, each
    window is saved as it arrives, the ``saved`` windows of an interrupted run are read back
    and written first, and the parts are removed once every date's mask is complete."""

    def __init__(
        self,
        dates: Sequence[Dated],
        outputs: Sequence[Path],
        model: str,
        options: PredictOptions,
        *,
        parts: WindowParts | None = None,
        saved: Sequence[Window] = (),
    ) -> None:
        grid = dates[0].scene.grid
        self.sinks = [
            SceneSink(replace(d.scene, grid=grid), model, out, options.output)
            for d, out in zip(dates, outputs, strict=True)
        ]
        self.single = np.zeros((len(dates), 256), np.int64)
        self.refined = np.zeros(len(dates), np.int64)
        self.error: BaseException | None = None
        self.parts, self.saved = parts, saved
        self._stack = contextlib.ExitStack()

    def open(self) -> None:
        with contextlib.ExitStack() as stack:
            for sink in self.sinks:
                stack.enter_context(sink)
            self._stack = stack.pop_all()
        for window in self.saved:
            result = None if self.parts is None else load_series_window(self.parts, window)
            if result is None:
                raise OutputError(
                    f"the saved window at row {window.row}, column {window.col} of this series "
                    "went missing while it ran; run it again"
                )
            self._write(window, result)

    def add(self, window: Window, result: SeriesWindow) -> None:
        if self.parts is not None:
            self.parts.save(window, series_part(result))
        self._write(window, result)

    def _write(self, window: Window, result: SeriesWindow) -> None:
        self.single += result.single
        self.refined += result.refined
        for t, sink in enumerate(self.sinks):
            sink.add(window, result.masks[t], None if result.probs is None else result.probs[t])

    def close(self, seconds: float) -> None:
        self._stack.close()
        if self.parts is not None:
            self.parts.remove()

    def fail(self, error: BaseException, seconds: float) -> None:
        """Nothing appears at any date's output; the saved windows stay for a re-run."""
        self.error = error
        with contextlib.suppress(Exception):
            self._stack.__exit__(type(error), error, error.__traceback__)

    def drop(self, seconds: float) -> None:
        self.fail(OutputError("the run was interrupted"), seconds)


def series_part(result: SeriesWindow) -> dict[str, np.ndarray]:
    """The arrays of one series window as saved (:class:`~s2clouds.io.parts.WindowParts`)."""
    arrays = {"masks": result.masks, "single": result.single, "refined": result.refined}
    if result.probs is not None:
        arrays["probs"] = result.probs
    return arrays


def series_parts(
    sources: Sequence[str | Path | np.ndarray],
    outdir: Path,
    plan: SeriesPlan,
    grid: Grid,
    model: str,
) -> WindowParts | None:
    """Where the windows of this series are saved while it runs (a hidden folder in
    ``outdir`` named by a fingerprint of the inputs, grid, model, rules and outputs), or None
    when a date is an array (nothing on disk says whether it changed)."""
    if any(isinstance(source, np.ndarray) for source in sources):
        return None
    dates = len(plan.dates)
    key = fingerprint(
        [str(source) for source in sources],
        grid=[str(grid.crs), tuple(grid.transform), grid.shape],
        model=model,
        rules=repr(plan.rules),
        run=repr(plan.run),
        probabilities=plan.probabilities,
        block=SERIES_BLOCK,
    )

    def expected(window: Window) -> Expected:
        shapes: dict[str, tuple[tuple[int, ...], np.dtype[Any] | None]] = {
            "masks": ((dates, *window.shape), np.dtype(np.uint8)),
            "single": ((dates, 256), np.dtype(np.int64)),
            "refined": ((dates,), np.dtype(np.int64)),
        }
        if plan.probabilities:
            shapes["probs"] = ((dates, N_CLASSES, *window.shape), np.dtype(np.uint8))
        return shapes

    return WindowParts(outdir / f".series.parts-{key}", expected)


def load_series_window(parts: WindowParts, window: Window) -> SeriesWindow | None:
    """The saved result of ``window``, or None when it must be computed."""
    arrays = parts.load(window)
    if arrays is None:
        return None
    return SeriesWindow(arrays["masks"], arrays.get("probs"), arrays["single"], arrays["refined"])


def predict_series(
    sources: Sequence[str | Path | np.ndarray],
    outdir: str | Path,
    options: PredictOptions | None = None,
    rules: SeriesRules | None = None,
    *,
    cluster: ClusterOptions | None = None,
    resume: bool = True,
) -> SeriesResult:
    """Predict every date of ``sources`` (one place) with the evidence of the others and write
    one mask per date into ``outdir`` (and probabilities when ``options.output`` asks), plus
    :data:`SERIES_SUMMARY`. Windows of :data:`SERIES_BLOCK` px (whatever
    ``options.run.block`` says) are computed by the engine ``cluster`` chooses (see
    :func:`~s2clouds.inference.distributed.wants_cluster`; None: this process). Errors are
    raised before any output when inputs do not fit together (bands, CRS, no overlap). The
    dates, grid, model, window size and engine are logged (INFO).

    Finished windows are saved beside the masks while the series runs (dates read from
    files only), so that a run interrupted or failed part-way resumes where it stopped;
    ``resume=False`` computes every window again."""
    options = options or PredictOptions()
    rules = rules or SeriesRules()
    start = time.perf_counter()
    outdir = Path(outdir).absolute()
    dates, model, bands = open_series(sources, options)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {outdir}: {exc}") from exc
    outputs = _series_outputs(dates, outdir, options)
    days = date_days([d.scene for d in dates])
    grid = dates[0].scene.grid
    block = SERIES_BLOCK
    plan = SeriesPlan(
        dates=tuple(dates),
        model=model,
        model_bands=model.bands,
        names=tuple(canonical_band_names(bands)),
        rules=rules,
        run=options.run,
        sun=tuple(sun_from_context(d.context) for d in dates),
        resolution=float(dates[0].context.resolution or 10.0),
        days=None if days is None else tuple(days),
        probabilities=options.output.probabilities,
    )
    windows = tuple(grid.windows(block))
    parts = series_parts(sources, outdir, plan, grid, model.name)
    if parts is not None and not resume:
        parts.remove()
    # which windows an interrupted run saved (each part is read again when it is written, as
    # the composite does: the parts of a long series need not fit in memory together)
    saved = () if parts is None else tuple(w for w in windows if load_series_window(parts, w))
    todo = tuple(w for w in windows if w not in saved)
    if saved:
        logger.info("resuming: %d of %d windows already done", len(saved), len(windows))
    job = Job(
        0,
        series_window,
        plan,
        todo,
        name=f"series of {len(dates)} dates",
        remote=replace(plan, model=model.name),
        label="series windows",
    )
    sink = SeriesOutput(dates, outputs, model.name, options, parts=parts, saved=saved)
    with open_engine(cluster, len(todo)) as engine:
        logger.info(
            "%d date(s) on a %d x %d px grid, model %s, windows of %d px on %s",
            len(dates),
            grid.height,
            grid.width,
            model.name,
            block,
            engine.description,
        )
        run_jobs([job], [sink], engine, progress=options.progress)
    if sink.error is not None:
        raise sink.error
    seconds = time.perf_counter() - start
    records = []
    for t, (d, scene_sink, source) in enumerate(zip(dates, sink.sinks, sources, strict=True)):
        records.append(
            SeriesDateRecord(
                input=str(source) if not isinstance(source, np.ndarray) else f"array {t}",
                product_id=d.scene.product_id,
                output=str(scene_sink.output),
                day=days[t] if days is not None else None,
                single=_shares(sink.single[t]),
                series=_shares(scene_sink.counts),
                refined_percent=round(100 * float(sink.refined[t]) / (grid.height * grid.width), 3),
            )
        )
    summary = _write_summary(outdir, records, model.name, seconds, days is not None)
    return SeriesResult(records, summary, model.name, seconds)


def _date_window(
    date: Dated, model: CloudModel, window: Window, run: RunOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (C, h, w) of ``window`` of the series grid (NaN outside the date) and the
    date's single-date probabilities (4, h, w) there: those of
    :func:`~s2clouds.inference.window.predict_window` on the date's own grid (clear where
    the date has no data). The pixels are read once, for the model and the series."""
    scene = date.scene
    n_bands = len(scene.bands)
    image = np.full((n_bands, *window.shape), np.nan, np.float32)
    probs = np.zeros((N_CLASSES, *window.shape), np.float32)
    probs[0] = 1.0
    own = date.on_own_grid(window)
    if own is not None:
        model_scene = scene.select(model.bands)
        placed = (slice(None), *date.placement(own).within(window))
        region = full_read_window(model_scene, model, own, run, date.context)
        if region is None:  # the model reads overviews: the series reads the window itself
            image[placed] = scene.read(own)
            reader = None
        else:
            pixels = scene.read(region)
            image[placed] = pixels[(slice(None), *own.within(region))]
            model_idx = [scene.bands.index(b) for b in model_scene.bands]

            def reader(part: Window) -> np.ndarray:
                return np.ascontiguousarray(pixels[model_idx][(slice(None), *part.within(region))])

        _, probs[placed] = predict_window(model_scene, model, own, run, date.context, reader=reader)
    missing = ~np.all(np.isfinite(image), axis=0)
    probs[:, missing] = 0.0
    probs[0, missing] = 1.0
    return image, probs


def _write_summary(
    outdir: Path, records: list[SeriesDateRecord], model: str, seconds: float, dated: bool
) -> Path:
    from s2clouds import __version__

    path = outdir / SERIES_SUMMARY
    body: dict[str, Any] = {
        "s2clouds_version": __version__,
        "model": model,
        "dates_known": dated,
        "seconds": round(seconds, 3),
        "dates": [vars(r) for r in records],
        "nodata": NODATA,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path
