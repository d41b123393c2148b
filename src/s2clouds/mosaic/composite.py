"""A cloud-free composite of many acquisitions, computed window by window.

:func:`plan_composite` opens every input (headers only), puts them in canonical order, chooses
the target grid and the masker; :func:`composite_window` computes one window of the target
grid from every acquisition (read onto the grid once, mask, score, merge): the unit of work,
run by the engine of every driver (:func:`~s2clouds.inference.sink.run_jobs`), in this
process or on a Dask cluster (a local one by default, ``--scheduler`` for a running one). Memory is bounded by the window size times the number of inputs.

Each finished window is saved in a parts folder beside the output (``.<name>.parts-<hash>``,
the hash of everything that defines the result), so a run that is interrupted resumes with
the windows still missing. Only when every window is there are the outputs written, each
atomically (temporary file, then rename): nothing appears at the target on failure.

Outputs for ``-o OUT.tif``:

``OUT.tif``           COG, the composite in the input bands and data type (uint16 DN stays
                      uint16 DN; no data 0, NaN for float inputs)
``OUT.info.tif``      COG, uint16: ``clear_count`` (clear observations), ``source_doy``
                      (day of year of the picked observation, best/medoid; 0 none),
                      ``quality`` (quality of the picked observation, or the mean of the clear
                      ones, x 10000; 0 none)
``OUT.png``           true-colour quicklook (when the bands hold B02, B03, B04)
``OUT.json``          summary: inputs used with their clear shares, inputs left out and why,
                      pixels left without a clear observation

An input whose header opens but whose pixels cannot be read in some window (a damaged or
truncated file) is left out of those windows only; the run goes on and reports it (the
input's ``failed_windows`` and ``error`` in ``OUT.json``, a warning on the command line).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds.errors import OptionError, OutputError, S2CloudsError, SceneFormatError, detaching
from s2clouds.io.grid import Grid, Window
from s2clouds.io.parts import Expected, WindowParts, fingerprint
from s2clouds.io.paths import check_outputs
from s2clouds.io.scene import Scene
from s2clouds.io.write import RasterWriter, atomic_path, check_writable
from s2clouds.mosaic.inputs import Acquisition, Rejected, expand_composite_inputs, open_acquisitions
from s2clouds.mosaic.merge import Method, merge, parse_method, rank_images
from s2clouds.mosaic.quality import DISTANCE_CAP_M, get_scorer
from s2clouds.mosaic.warp import GridRequest, check_overlap, on_grid, target_grid
from s2clouds.radiometry import to_reflectance
from s2clouds.viz import TRUE_COLOUR_BANDS

#: what a composite run reports (inputs left out, resumed windows, the cluster): silent
#: unless a handler is set
logger = logging.getLogger(__name__)
if TYPE_CHECKING:
    from s2clouds.inference.engine import Engine

#: what the output may end with: the composite is a GeoTIFF (COG)
COMPOSITE_SUFFIXES = (".tif", ".tiff")
QUALITY_SCALE = 10000
#: pixels of context every scorer gets around a window (the SEN12MS score's smoothing needs 6)
SCORER_HALO = 16
INFO_BANDS = ("clear_count", "source_doy", "quality")
#: the ``Scene.priors`` key of a scorer's scene map (see ``quality.Scorer.scene_map``)
SCORER_MAP = "scorer_map"


@dataclass(frozen=True)
class CompositeOptions:
    """What a composite run can be told (see ``s2clouds composite --help``)."""

    method: str = "best"
    scorer: str = "probability"
    model: str = "auto"
    min_quality: float = 0.5
    distance_cap: float = DISTANCE_CAP_M
    block: int = 512
    bands: tuple[str, ...] | None = None
    scale: str | None = None
    level: str | None = None
    drop_incomplete: bool = False
    grid: GridRequest = field(default_factory=GridRequest)
    resampling: str = "bilinear"
    resume: bool = True
    quicklook: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuse a quality threshold outside 0-1 and a distance cap that is negative, NaN or
        infinite (NaN would keep no observation and leave every pixel empty)."""
        if not 0.0 <= self.min_quality <= 1.0:  # also refuses NaN
            raise OptionError(
                f"min_quality={self.min_quality!r} is not a number from 0 to 1",
                param="min_quality",
            )
        if not (math.isfinite(self.distance_cap) and self.distance_cap >= 0):
            raise OptionError(
                f"distance_cap={self.distance_cap!r} is not a finite number of metres >= 0",
                param="distance_cap",
            )
        if not self.block >= 1:
            raise OptionError(
                f"block={self.block!r} must be a positive number of pixels", param="block"
            )


@dataclass(frozen=True)
class CompositePlan:
    """Everything a window task needs (small and picklable: scenes hold file paths)."""

    scenes: tuple[Scene, ...]
    paths: tuple[str, ...]
    doys: tuple[int, ...]
    grid: Grid
    bands: tuple[str, ...]
    model: str | None
    scorer: str
    method: Method
    min_quality: float
    distance_cap: float
    pixel_size_m: float
    harmonise: bool
    dtype: str
    nodata: float | None
    #: each input's image rank (0: fewest poor pixels) for rules that rank whole images,
    #: from :func:`rank_inputs`; None until then
    ranks: tuple[int, ...] | None = None


@dataclass
class WindowResult:
    """One computed window: composite values in the output dtype, info bands, per-input
    clear and valid pixel counts, and per-input read errors ("" when it was read)."""

    window: Window
    values: np.ndarray
    info: np.ndarray
    clear: np.ndarray
    valid: np.ndarray
    errors: np.ndarray


@dataclass
class CompositeResult:
    output: Path
    info: Path
    quicklook: Path | None
    summary: Path
    summary_data: dict[str, Any]
    seconds: float
    engine: str


# --------------------------------------------------------------------------------- plan
def _output_type(acquisitions: Sequence[Acquisition]) -> tuple[bool, str, float | None]:
    """(harmonise, dtype, nodata): raw stored values when every input shares one radiometry
    (their dtype, no data 0 for integers / NaN for floats), else reflectance x 10000 as uint16
    (offsets applied: harmonised)."""
    radiometries = {repr(a.scene.radiometry) for a in acquisitions}
    dtype = acquisitions[0].scene.sources[0].dtype()
    if len(radiometries) > 1:
        return True, "uint16", 0
    return False, dtype, (None if np.dtype(dtype).kind == "f" else 0)


def plan_composite(
    inputs: Sequence[str], options: CompositeOptions
) -> tuple[CompositePlan, list[Rejected]]:
    """Open, order, check and grid the inputs; resolve model and scorer. Raises before any
    output is written when nothing can be composited; inputs left out are logged (INFO)."""
    from s2clouds.inference.window import with_shadow_reach, with_sun_angles
    from s2clouds.models.cache import cached_model
    from s2clouds.models.registry import resolve_model_name

    method = parse_method(options.method)
    scorer = get_scorer(options.scorer)
    paths = expand_composite_inputs(inputs)
    if not paths:
        raise SceneFormatError(
            "give at least one input (a path, a glob, @LIST or a folder of items)"
        )
    acquisitions, rejected = open_acquisitions(
        paths,
        bands=options.bands,
        scale=options.scale,
        level=options.level,
        drop_incomplete=options.drop_incomplete,
    )
    grid = target_grid(acquisitions, options.grid)
    acquisitions, no_overlap = check_overlap(acquisitions, grid, drop=options.drop_incomplete)
    for item in no_overlap:
        warnings.warn(f"left out: {item.reason}", stacklevel=2)
    rejected += no_overlap
    for item in rejected:
        logger.info("left out: %s: %s", item.path, item.reason)
    bands = acquisitions[0].scene.bands
    scenes = [on_grid(a.scene, grid, options.resampling) for a in acquisitions]
    model_name = None
    if scorer.needs_probabilities:
        model_name = resolve_model_name(options.model, bands, acquisitions[0].scene.level)
        model = cached_model(model_name, bands)
        if model.estimate_sun_angles is not None:  # once per scene, as batch predict does
            scenes = [
                s
                if s.angles is not None
                else replace(s, angles=with_sun_angles(s.select(model.bands), model).angles)
                for s in scenes
            ]
        # where each input's clouds can cast shadow, mapped once from its overview: its
        # windows then read no 2.5 km halo each for the model's shadow constraint
        scenes = [
            replace(s, priors=with_shadow_reach(s.select(model.bands), model, 0).priors)
            for s in scenes
        ]
    if scorer.scene_map is not None:  # e.g. the sen12ms shadow zone: once per input
        scenes = [replace(s, priors={**s.priors, SCORER_MAP: scorer.scene_map(s)}) for s in scenes]
    harmonise, dtype, nodata = _output_type(acquisitions)
    plan = CompositePlan(
        scenes=tuple(scenes),
        paths=tuple(a.path for a in acquisitions),
        doys=tuple(a.day_of_year for a in acquisitions),
        grid=grid,
        bands=bands,
        model=model_name,
        scorer=scorer.name,
        method=method,
        min_quality=options.min_quality,
        distance_cap=options.distance_cap if scorer.uses_distance else 0.0,
        pixel_size_m=grid.metres_per_pixel,
        harmonise=harmonise,
        dtype=dtype,
        nodata=nodata,
    )
    return plan, rejected


# ------------------------------------------------------------------------------- window
def observation(plan: CompositePlan, index: int, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Values (C, h, w) float32 in output units (NaN = no data) and quality (h, w) float32
    (NaN where not valid) of acquisition ``index`` in ``window``.

    The input is read once for the scorer and the masker: the window with the scorer's halo,
    grown by the masker's own halo (see :func:`~s2clouds.inference.window.full_read_window`)."""
    from s2clouds.inference.options import RunOptions
    from s2clouds.inference.window import expand_window, full_read_window, predict_window
    from s2clouds.models.cache import cached_model

    scene, grid = plan.scenes[index], plan.grid
    # the scorer sees the window grown by the distance cap, and at least SCORER_HALO pixels
    # (for its own filters), so that the result does not depend on where windows are cut
    halo = max(SCORER_HALO, math.ceil(plan.distance_cap / plan.pixel_size_m))
    outer = expand_window(window, halo, grid.height, grid.width)
    model, run, region = None, None, outer
    if plan.model is not None:
        model = cached_model(plan.model, plan.bands)
        run = RunOptions(model=plan.model, block=max(outer.height, outer.width))
        region = full_read_window(scene.select(model.bands), model, outer, run) or outer
    raw = np.stack([s.read(grid, region) for s in scene.sources])
    read = to_reflectance(raw, plan.bands, scene.radiometry, nodata=None)
    probs = None
    if model is not None and run is not None:
        model_idx = [plan.bands.index(b) for b in model.bands]

        def reader(part: Window) -> np.ndarray:
            return np.ascontiguousarray(read[model_idx][(slice(None), *part.within(region))])

        _, probs = predict_window(scene.select(model.bands), model, outer, run, reader=reader)
    mine = (slice(None), *outer.within(region))
    raw, reflectance = raw[mine], read[mine]
    scorer = get_scorer(plan.scorer)
    kwargs: dict[str, Any] = {"bands": plan.bands, "pixel_size": plan.pixel_size_m}
    if scorer.uses_distance:
        kwargs["cap"] = plan.distance_cap
    if scorer.scene_map is not None:
        kwargs["scene_map"] = scene.priors[SCORER_MAP].window(outer)
    quality = scorer.function(reflectance, probs, **kwargs)
    core = window.within(outer)
    values = (reflectance * QUALITY_SCALE) if plan.harmonise else raw
    values = values[(slice(None), *core)]
    quality = np.asarray(quality[core], dtype=np.float32).copy()
    quality[~np.all(np.isfinite(values), axis=0)] = np.nan
    return values.astype(np.float32, copy=False), quality


def _window_stack(
    plan: CompositePlan, window: Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every input's observation of ``window``: values (T, C, h, w), quality (T, h, w), valid
    and good (T, h, w) bool, and per-input read errors (T,) ("" when read)."""
    n = len(plan.scenes)
    values = np.empty((n, len(plan.bands), window.height, window.width), np.float32)
    quality = np.empty((n, window.height, window.width), np.float32)
    errors = np.full(n, "", dtype="U400")
    for i in range(n):
        try:
            values[i], quality[i] = observation(plan, i, window)
        except SceneFormatError as exc:  # unreadable here: reported, the others go on
            values[i], quality[i] = np.nan, np.nan
            errors[i] = str(exc)[:400]
        except S2CloudsError as exc:
            raise type(exc)(f"{plan.paths[i]}: {exc}") from exc
    valid = np.isfinite(quality)
    good = valid & (np.nan_to_num(quality, nan=-1.0) >= plan.min_quality)
    return values, quality, valid, good, errors


@detaching
def count_window(plan: CompositePlan, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Clear and valid pixels (T,) int64 of every input in ``window``: the unit of work of the
    ranking pass (:func:`rank_inputs`)."""
    _, _, valid, good, _ = _window_stack(plan, window)
    n = len(plan.scenes)
    return good.reshape(n, -1).sum(axis=1), valid.reshape(n, -1).sum(axis=1)


@detaching
def composite_window(plan: CompositePlan, window: Window) -> WindowResult:
    """One window of the composite (the unit of work of every engine). Library errors are
    :func:`~s2clouds.errors.detached` so that they cross a Dask cluster intact."""
    n = len(plan.scenes)
    values, quality, valid, good, errors = _window_stack(plan, window)
    merged = merge(values, np.nan_to_num(quality, nan=0.0), good, plan.method, ranks=plan.ranks)
    out = merged.values
    if np.dtype(plan.dtype).kind != "f":
        info = np.iinfo(plan.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
        out = np.where(np.isfinite(merged.values), out, plan.nodata or 0).astype(plan.dtype)
    else:
        out = out.astype(plan.dtype)
    doy = np.zeros(merged.count.shape, np.uint16)
    if plan.method.picks_one:
        lookup = np.asarray((0, *plan.doys), np.uint16)
        doy = lookup[merged.chosen.astype(np.intp) + 1]
    q = np.rint(np.nan_to_num(merged.quality, nan=0.0) * QUALITY_SCALE).astype(np.uint16)
    info_bands = np.stack([np.minimum(merged.count, 65535).astype(np.uint16), doy, q])
    return WindowResult(
        window,
        out,
        info_bands,
        good.reshape(n, -1).sum(axis=1),
        valid.reshape(n, -1).sum(axis=1),
        errors,
    )


# ---------------------------------------------------------------------------- resume store
class PartStore:
    """Finished windows of a composite, saved beside the output (:class:`WindowParts`: one
    ``.npz`` each, written atomically, data only); a part of the wrong shape or type for its
    window is computed again (:meth:`load` returns None for it)."""

    def __init__(self, output: Path, plan: CompositePlan, block: int) -> None:
        self.folder = output.parent / f".{output.name}.parts-{composite_fingerprint(plan, block)}"
        self.inputs, self.bands, self.dtype = len(plan.scenes), len(plan.bands), plan.dtype
        self.parts = WindowParts(self.folder, self.expected)

    def expected(self, window: Window) -> Expected:
        """What the part of ``window`` holds: array name -> (shape, dtype or None)."""
        return {
            "values": ((self.bands, *window.shape), np.dtype(self.dtype)),
            "info": ((len(INFO_BANDS), *window.shape), np.dtype(np.uint16)),
            "clear": ((self.inputs,), None),
            "valid": ((self.inputs,), None),
            "errors": ((self.inputs,), None),
        }

    def path(self, window: Window) -> Path:
        return self.parts.path(window)

    def save(self, result: WindowResult) -> None:
        """Save one window (atomically)."""
        self.parts.save(
            result.window,
            {
                "values": result.values,
                "info": result.info,
                "clear": result.clear,
                "valid": result.valid,
                "errors": result.errors,
            },
        )

    def load(self, window: Window) -> WindowResult | None:
        """The saved part of ``window``, or None when it is missing or not one of ours."""
        arrays = self.parts.load(window)
        if arrays is None:
            return None
        if arrays["errors"].dtype.kind != "U" or not all(
            arrays[k].dtype.kind in "iu" for k in ("clear", "valid")
        ):
            return None
        return WindowResult(window, *(arrays[name] for name in self.expected(window)))

    def remove(self) -> None:
        self.parts.remove()


def composite_fingerprint(plan: CompositePlan, block: int) -> str:
    """A hash of what defines the result: inputs (paths, sizes, times), grid, options."""
    return fingerprint(
        plan.paths,
        harmonise=plan.harmonise,
        grid=[str(plan.grid.crs), tuple(plan.grid.transform), plan.grid.shape],
        bands=plan.bands,
        model=plan.model,
        scorer=plan.scorer,
        method=str(plan.method),
        min_quality=plan.min_quality,
        cap=plan.distance_cap,
        dtype=plan.dtype,
        block=block,
        ranks=plan.ranks,
    )


# ------------------------------------------------------------------------------- engines
Task = Callable[[CompositePlan, Window], Any]


class _Collected:
    """The sink of a composite pass: hands each window's result to ``consume``; keeps the
    error that failed the pass (raised by :func:`_run_windows`)."""

    def __init__(self, consume: Callable[[Any], None]) -> None:
        self.consume = consume
        self.error: BaseException | None = None

    def open(self) -> None:
        pass

    def add(self, window: Window, result: Any) -> None:
        self.consume(result)

    def close(self, seconds: float) -> None:
        pass

    def fail(self, error: BaseException, seconds: float) -> None:
        self.error = error

    def drop(self, seconds: float) -> None:
        pass  # saved parts stay for the next run to resume from


# ----------------------------------------------------------------------------------- run
def output_paths(output: Path) -> dict[str, Path]:
    stem = output.with_suffix("")
    return {
        "composite": output,
        "info": Path(f"{stem}.info.tif"),
        "quicklook": Path(f"{stem}.png"),
        "summary": Path(f"{stem}.json"),
    }


def run_composite(
    inputs: Sequence[str],
    output: str | Path,
    options: CompositeOptions,
    *,
    cluster: Any = None,
) -> CompositeResult:
    """Compute the composite of ``inputs`` into ``output`` (see the module docstring).

    ``cluster``: :class:`~s2clouds.inference.distributed.ClusterOptions` (None or
    ``workers=0``: in this process). Inputs left out, a resumed run and the cluster used are
    logged (INFO).
    """
    started = time.perf_counter()
    output = Path(output)
    if output.suffix.lower() not in COMPOSITE_SUFFIXES:
        raise OutputError(
            f"output={output}: the composite is a GeoTIFF; give a path ending in .tif "
            "(OUT.json, OUT.info.tif and OUT.png are written beside it)"
        )
    paths = output_paths(output)
    for target in paths.values():
        check_writable(target)
    given = expand_composite_inputs(inputs)
    _refuse_overwriting_inputs(paths, [*given, options.grid.like])
    plan, rejected = plan_composite(inputs, options)
    read = [*given, *plan.paths, *(r.path for r in rejected), options.grid.like]
    _refuse_overwriting_inputs(paths, [*read, *(f for s in plan.scenes for f in s.input_files())])
    windows = list(plan.grid.windows(options.block))
    from s2clouds.inference.distributed import open_engine

    with open_engine(cluster, len(windows)) as engine:
        if plan.method.ranks_images:
            plan = rank_inputs(plan, windows, options, engine, logger.info)
        store = PartStore(output, plan, options.block)
        if not options.resume:
            store.remove()
        todo = [w for w in windows if store.load(w) is None]
        if len(todo) < len(windows):
            logger.info(
                "resuming: %d of %d windows already done", len(windows) - len(todo), len(windows)
            )
        _run_windows(
            engine,
            plan,
            todo,
            composite_window,
            store.save,
            "composite windows",
            options,
            logger.info,
        )
        where = engine.description
    summary = _write_outputs(plan, windows, store, paths, rejected, options)
    store.remove()
    seconds = time.perf_counter() - started
    summary["seconds"] = round(seconds, 3)
    return CompositeResult(
        output=output,
        info=paths["info"],
        quicklook=paths["quicklook"] if paths["quicklook"].exists() else None,
        summary=paths["summary"],
        summary_data=summary,
        seconds=seconds,
        engine=where,
    )


def _refuse_overwriting_inputs(paths: dict[str, Path], inputs: Sequence[str | None]) -> None:
    """Refuse outputs (the composite, its info raster, quicklook and summary) that are one
    of the inputs or a file they are read from (any link to it): OutputError."""
    labels = {
        "composite": "the composite (output=)",
        "info": "the info raster (OUT.info.tif)",
        "quicklook": "the quicklook (OUT.png)",
        "summary": "the summary (OUT.json)",
    }
    check_outputs({labels[k]: v for k, v in paths.items()}, inputs)


def rank_inputs(
    plan: CompositePlan,
    windows: Sequence[Window],
    options: CompositeOptions,
    engine: Engine,
    announce: Callable[[str], None],
) -> CompositePlan:
    """``plan`` with each input's image rank (:func:`~s2clouds.mosaic.merge.rank_images`):
    a first pass over every window that scores every input and counts its clear and valid
    pixels, run by the same engine as the composite."""
    clear = np.zeros(len(plan.scenes), np.int64)
    valid = np.zeros(len(plan.scenes), np.int64)

    def add(counts: tuple[np.ndarray, np.ndarray]) -> None:
        clear[:] += counts[0]
        valid[:] += counts[1]

    _run_windows(engine, plan, windows, count_window, add, "ranking windows", options, announce)
    return replace(plan, ranks=rank_images(clear.tolist(), valid.tolist()))


def _run_windows(
    engine: Engine,
    plan: CompositePlan,
    todo: Sequence[Window],
    task: Task,
    consume: Callable[[Any], None],
    label: str,
    options: CompositeOptions,
    announce: Callable[[str], None],
) -> None:
    """Run ``task(plan, window)`` for every window of ``todo`` on ``engine`` (one job, its
    plan sent once to every worker) and hand each result to ``consume`` as it arrives; the
    first error is raised."""
    from s2clouds.inference.engine import Job, SerialEngine
    from s2clouds.inference.sink import run_jobs

    if not todo:
        return
    if not isinstance(engine, SerialEngine):
        announce(f"{label}: {len(todo)} on {engine.description}")
    job = Job(0, task, plan, tuple(todo), name="the composite", label=label, broadcast=True)
    sink = _Collected(consume)
    run_jobs([job], [sink], engine, progress=options.progress)
    if sink.error is not None:
        raise sink.error


def _write_outputs(
    plan: CompositePlan,
    windows: Sequence[Window],
    store: PartStore,
    paths: dict[str, Path],
    rejected: Sequence[Rejected],
    options: CompositeOptions,
) -> dict[str, Any]:
    """Write the COG, the info raster, the quicklook and the summary from the saved windows;
    on any failure remove what this call wrote (nothing is left at the target)."""
    from s2clouds.io.profiles import COG_CONTINUOUS

    n = len(plan.scenes)
    clear = np.zeros(n, np.int64)
    valid = np.zeros(n, np.int64)
    histogram = np.zeros(n + 1, np.int64)
    failed = np.zeros(n, np.int64)
    first_error = [""] * n
    written: list[Path] = []
    tags = {
        "COMPOSITE_METHOD": str(plan.method),
        "QUALITY_SCORER": plan.scorer,
        "MODEL": plan.model or "none",
        "INPUTS": str(n),
        "VALUES": "reflectance x 10000 (harmonised)"
        if plan.harmonise
        else "as stored in the inputs",
    }
    try:
        with (
            RasterWriter(
                paths["composite"],
                plan.grid,
                count=len(plan.bands),
                dtype=plan.dtype,
                nodata=plan.nodata if plan.nodata is not None else float("nan"),
                band_names=plan.bands,
                tags=tags,
                cog_profile=COG_CONTINUOUS,
            ) as main,
            RasterWriter(
                paths["info"],
                plan.grid,
                count=3,
                dtype="uint16",
                nodata=None,
                band_names=INFO_BANDS,
                tags={**tags, "QUALITY_SCALE": str(QUALITY_SCALE)},
                cog_profile=COG_CONTINUOUS,
            ) as info,
        ):
            for window in windows:
                part = store.load(window) or composite_window(plan, window)  # (gone meanwhile)
                main.write(window, part.values)
                info.write(window, part.info)
                clear += part.clear
                valid += part.valid
                histogram += np.bincount(part.info[0].ravel(), minlength=n + 1)[: n + 1]
                for i, message in enumerate(part.errors.tolist()):
                    if message:
                        failed[i] += 1
                        first_error[i] = first_error[i] or message
        written += [paths["composite"], paths["info"]]
        if options.quicklook and set(TRUE_COLOUR_BANDS) <= set(plan.bands):
            _write_quicklook(plan, paths["composite"], paths["quicklook"])
            written.append(paths["quicklook"])
        summary = _summary(plan, clear, valid, histogram, rejected, paths)
        summary["windows"] = len(windows)
        for entry, count, message in zip(summary["inputs"], failed, first_error, strict=True):
            entry["failed_windows"] = int(count)
            if count:
                entry["error"] = message
        if plan.ranks is not None:  # the ranked merge: the order the images were merged in
            for entry, rank in zip(summary["inputs"], plan.ranks, strict=True):
                entry["rank"] = rank
        with atomic_path(paths["summary"]) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _write_quicklook(plan: CompositePlan, cog: Path, png: Path, max_size: int = 1024) -> None:
    import rasterio
    from matplotlib.image import imsave
    from rasterio.enums import Resampling

    from s2clouds.viz import TRUE_COLOUR_BANDS, rgb_quicklook

    factor = max(1, math.ceil(max(plan.grid.shape) / max_size))
    shape = (math.ceil(plan.grid.height / factor), math.ceil(plan.grid.width / factor))
    indexes = [plan.bands.index(b) + 1 for b in TRUE_COLOUR_BANDS]
    with rasterio.open(cog) as ds:
        data = ds.read(indexes, out_shape=(3, *shape), resampling=Resampling.nearest)
    rgb = data.astype(np.float32)
    if plan.nodata is not None:
        rgb[data == plan.nodata] = np.nan
    picture = rgb_quicklook(rgb, TRUE_COLOUR_BANDS)
    with atomic_path(png) as tmp:
        imsave(tmp, picture, format="png")


def _summary(
    plan: CompositePlan,
    clear: np.ndarray,
    valid: np.ndarray,
    histogram: np.ndarray,
    rejected: Sequence[Rejected],
    paths: dict[str, Path],
) -> dict[str, Any]:
    total = plan.grid.height * plan.grid.width
    no_clear = int(histogram[0])
    return {
        "method": str(plan.method),
        "scorer": plan.scorer,
        "model": plan.model,
        "min_quality": plan.min_quality,
        "distance_cap_m": plan.distance_cap,
        "grid": {
            "crs": str(plan.grid.crs),
            "transform": list(plan.grid.transform)[:6],
            "height": plan.grid.height,
            "width": plan.grid.width,
        },
        "bands": list(plan.bands),
        "dtype": plan.dtype,
        "values": "harmonised reflectance x 10000" if plan.harmonise else "as stored",
        "outputs": {k: str(v) for k, v in paths.items()},
        "inputs": [
            {
                "path": path,
                "day_of_year": doy,
                "valid_pixels": int(v),
                "clear_pixels": int(c),
                "clear_share": round(float(c / v), 4) if v else 0.0,
            }
            for path, doy, c, v in zip(plan.paths, plan.doys, clear, valid, strict=True)
        ],
        "left_out": [asdict(r) for r in rejected],
        "pixels": total,
        "pixels_without_clear_observation": no_clear,
        "share_without_clear_observation": round(no_clear / total, 6),
        "clear_observations_histogram": [int(v) for v in histogram],
    }
