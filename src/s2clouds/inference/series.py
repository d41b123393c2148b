"""Time-series masks: predict every date of a place with the evidence of the other dates.

:func:`predict_series` opens every input (paths, STAC items, arrays as
:func:`~s2clouds.io.scenes.read_scene` reads them), puts them on the first input's grid, and
goes over that grid window by window (window x dates in memory, never whole scenes x dates):
the single-date model gives each date's probabilities, then
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
)
from s2clouds.inference.options import PredictOptions
from s2clouds.inference.outputs import check_scene_outputs, mask_name
from s2clouds.inference.sink import SceneSink
from s2clouds.inference.window import (
    expand_window,
    model_alignment,
    model_halo,
    predict_array,
    probabilities_to_mask,
    probability_percent,
    with_shadow_reach,
    with_sun_angles,
)
from s2clouds.io.dates import acquisition_date
from s2clouds.io.grid import Grid, Window
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import read_scene
from s2clouds.io.write import atomic_path
from s2clouds.labels.schemes import NODATA
from s2clouds.models.base import CloudModel, ModelContext
from s2clouds.models.registry import get_model
from s2clouds.models.series import (
    SERIES_BANDS,
    SeriesRules,
    refine_series,
    require_series_bands,
)
from s2clouds.models.shadow_geometry import keep_shadow_within, sun_from_context

#: what a series run reports (its dates and grid): silent unless a handler is set
logger = logging.getLogger(__name__)
#: the summary of a series run, in its output folder
SERIES_SUMMARY = "series_summary.json"
#: largest window edge (px) of a series run: memory grows with window^2 x dates
SERIES_BLOCK = 256


@dataclass(frozen=True)
class Dated:
    """One date of the series: its scene (bands the run needs, sun angles), its model
    context, and where its grid's corner lies on the series grid (rows, cols)."""

    scene: Scene
    context: ModelContext
    offset: tuple[int, int]

    def read(self, window: Window) -> np.ndarray:
        """Reflectance (C, h, w) of ``window`` of the series grid, NaN outside this date."""
        rows, cols = self.offset
        height, width = self.scene.grid.shape
        out = np.full((len(self.scene.bands), window.height, window.width), np.nan, np.float32)
        top, left = max(window.row - rows, 0), max(window.col - cols, 0)
        bottom = min(window.row + window.height - rows, height)
        right = min(window.col + window.width - cols, width)
        if bottom > top and right > left:
            inner = Window(top, left, bottom - top, right - left)
            r0, c0 = top + rows - window.row, left + cols - window.col
            out[:, r0 : r0 + inner.height, c0 : c0 + inner.width] = self.scene.read(inner)
        return out

    def shadow_reach(self, window: Window) -> np.ndarray | None:
        """(h, w) bool: where this date's clouds can cast shadow over ``window`` of the series
        grid (its scene's map, shifted by the offset), or None without a map."""
        reach = self.scene.priors.get("shadow_reach")
        if reach is None:
            return None
        rows, cols = self.offset
        shifted = Window(window.row - rows, window.col - cols, window.height, window.width)
        return np.asarray(reach.window(shifted))


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
    res = target.resolution
    cols = round((grid.transform.c - target.transform.c) / res)
    rows = round((target.transform.f - grid.transform.f) / res)
    if rows >= target.height or cols >= target.width or rows + grid.height <= 0 \
            or cols + grid.width <= 0:
        raise CRSMismatchError(
            f"{where} does not overlap the first date {first} (offset {rows}, {cols} px of "
            f"a {target.height} x {target.width} px grid); give scenes of one place"
        )
    return rows, cols


def series_block(options: PredictOptions) -> int:
    """Window edge (px) of a series run: ``--block``, at most :data:`SERIES_BLOCK`."""
    return min(options.run.block, SERIES_BLOCK)


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
        offset = grid_offset(scene.grid, target, f"date {i + 1} ({scene.product_id})",
                             first.product_id)
        scene.check_radiometry()
        scene = with_sun_angles(scene, model)
        if max(scene.grid.shape) > series_block(options):
            # where this date's clouds can cast shadow, mapped once: the windows then read
            # no 2.5 km halo each (a scene in one window needs no map)
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
        check_scene_outputs(d.scene, output, options.output, inputs=inputs,
                            extra={"the series summary": outdir / SERIES_SUMMARY})
        outputs.append(output)
    return outputs


def _shares(counts: np.ndarray) -> dict[str, float]:
    valid = counts[:4].sum()
    if not valid:
        return {"cloud_percent": 0.0, "thin_percent": 0.0, "shadow_percent": 0.0,
                "valid_percent": 0.0}
    return {
        "cloud_percent": round(100 * float(counts[1] + counts[2]) / valid, 3),
        "thin_percent": round(100 * float(counts[2]) / valid, 3),
        "shadow_percent": round(100 * float(counts[3]) / valid, 3),
        "valid_percent": round(100 * float(valid) / max(1, counts.sum()), 3),
    }


def predict_series(
    sources: Sequence[str | Path | np.ndarray],
    outdir: str | Path,
    options: PredictOptions | None = None,
    rules: SeriesRules | None = None,
) -> SeriesResult:
    """Predict every date of ``sources`` (one place) with the evidence of the others and write
    one mask per date into ``outdir`` (and probabilities when ``options.output`` asks), plus
    :data:`SERIES_SUMMARY`. Windows of at most :data:`SERIES_BLOCK` px (``options.run.block``
    when smaller) are computed in this process; the dates, grid, model and window size are
    logged (INFO). Errors are raised before any output when inputs do not fit together
    (bands, CRS, no overlap)."""
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
    block = series_block(options)
    model_idx = list(range(len(model.bands)))
    names = canonical_band_names(bands)
    sun = [sun_from_context(d.context) for d in dates]
    resolution = float(dates[0].context.resolution or 10.0)
    halo = rules.context_px if len(dates) > 1 else 0
    counts_single = np.zeros((len(dates), 256), np.int64)
    refined_px = np.zeros(len(dates), np.int64)
    logger.info("%d date(s) on a %d x %d px grid, model %s, windows of %d px",
                len(dates), grid.height, grid.width, model.name, block)
    sinks = [
        SceneSink(replace(d.scene, grid=grid), model.name, out, options.output)
        for d, out in zip(dates, outputs, strict=True)
    ]
    with contextlib.ExitStack() as stack:
        for sink in sinks:
            stack.enter_context(sink)
        for window in grid.windows(block):
            outer = expand_window(window, halo, *grid.shape)
            images, probs = [], []
            for d in dates:
                image, p = _date_window(d, model, model_idx, outer, grid, options)
                images.append(image)
                probs.append(p)
            image_stack, prob_stack = np.stack(images), np.stack(probs)
            refined = refine_series(image_stack, prob_stack, names, rules,
                                    resolution=resolution, sun=sun, days=days)
            core = window.within(outer)
            refined_px += refined.refined[(slice(None), *core)].sum(axis=(1, 2))
            for t, sink in enumerate(sinks):
                image = image_stack[t][(slice(None), *core)]
                single = probabilities_to_mask(prob_stack[t][(slice(None), *core)], image)
                counts_single[t] += np.bincount(single.ravel(), minlength=256)
                p = refined.probs[t][(slice(None), *core)]
                mask = probabilities_to_mask(p, image)
                sink.add(window, mask, probability_percent(p, mask)
                         if options.output.probabilities else None)
    seconds = time.perf_counter() - start
    records = []
    for t, (d, sink, source) in enumerate(zip(dates, sinks, sources, strict=True)):
        series_counts = sink.counts
        records.append(SeriesDateRecord(
            input=str(source) if not isinstance(source, np.ndarray) else f"array {t}",
            product_id=d.scene.product_id,
            output=str(sink.output),
            day=days[t] if days is not None else None,
            single=_shares(counts_single[t]),
            series=_shares(series_counts),
            refined_percent=round(100 * float(refined_px[t]) / (grid.height * grid.width), 3),
        ))
    summary = _write_summary(outdir, records, model.name, seconds, days is not None)
    return SeriesResult(records, summary, model.name, seconds)


def _date_window(
    date: Dated,
    model: CloudModel,
    model_idx: list[int],
    window: Window,
    grid: Grid,
    options: PredictOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (C, h, w) of ``window`` and the single-date probabilities (4, h, w), the
    model run with its halo of context (as :func:`~s2clouds.inference.window.predict_window`)."""
    halo, alignment = model_halo(model, date.context), model_alignment(model, date.context)
    outer = expand_window(window, halo, grid.height, grid.width, alignment)
    image = date.read(outer)
    probs = predict_array(model, np.ascontiguousarray(image[model_idx]), date.context,
                          tile=options.run.tile, overlap=options.run.overlap)
    core = (slice(None), *window.within(outer))
    image, probs = image[core], probs[core]
    reach = date.shadow_reach(window)
    if reach is not None:
        keep_shadow_within(probs, reach)
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
