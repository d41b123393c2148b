"""Many scenes, one output folder: resumable batch prediction over an engine of windows.

A batch run opens every input on the client (headers only), names its output from the
product id (``<product_id>_cloudmask.tif``), skips scenes whose outputs are already complete,
and hands the windows of the others to an *engine*: :class:`SerialEngine` computes them in this
process, :class:`~s2clouds.inference.distributed.DaskEngine` on a Dask cluster. Either way the
client receives ``(window, mask, probabilities)`` per window and writes each scene's COG
(atomically, see :mod:`s2clouds.io.write`), so memory is bounded by the window size and the
number of windows in flight, never by the scene size.

A scene that cannot be read, or whose windows fail, is recorded as failed and the others go
on. The run log ``<outdir>/s2clouds_run.json`` (rewritten atomically after every scene) lists
each input with its output, status (``done``, ``skipped``, ``failed`` or ``pending``), error,
seconds and cloud/shadow percentages.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from s2clouds import __version__
from s2clouds.errors import OutputError, S2CloudsError, SceneFormatError, detached, one_line
from s2clouds.inference.predict import (
    PROBA_SUFFIX,
    PredictionResult,
    PredictOptions,
    SceneSink,
    check_scene_outputs,
    open_scene,
    predict_window,
    prepare_scene,
    probabilities_path,
    probability_percent,
    window_progress,
)
from s2clouds.io.grid import Window
from s2clouds.io.limits import check_regular_file
from s2clouds.io.paths import check_outputs
from s2clouds.io.scenes import Scene
from s2clouds.io.write import atomic_path, check_writable
from s2clouds.models.base import CloudModel
from s2clouds.models.registry import get_model

if TYPE_CHECKING:
    from s2clouds.inference.distributed import ClusterOptions

RUN_LOG = "s2clouds_run.json"
MASK_SUFFIX = "_cloudmask.tif"
GLOB_CHARACTERS = re.compile(r"[*?\[]")
UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._+-]")


# --------------------------------------------------------------------------- inputs and outputs
def expand_inputs(arguments: Sequence[str], from_file: Path | None = None) -> list[str]:
    """Input paths from command-line ``arguments`` and an optional list file, in order.

    An argument ``@list.txt`` (or ``from_file``) is a text file of inputs, one per line (blank
    lines and ``#`` comments ignored; relative paths are relative to the list file's folder).
    Arguments and lines with ``*``, ``?`` or ``[`` are globs (``**`` recursive), sorted; files
    that s2clouds wrote itself (``*_cloudmask.tif``) are left out of glob matches. A glob that
    matches nothing is kept as it is, so that it is reported as a failed input. Duplicates are
    dropped.
    """
    listed: list[str] = []
    for argument in arguments:
        if argument.startswith("@"):
            listed.extend(read_input_list(Path(argument[1:])))
        else:
            listed.extend(_expand_glob(argument))
    if from_file is not None:
        listed.extend(read_input_list(from_file))
    return list(dict.fromkeys(listed))


def read_input_list(path: Path) -> list[str]:
    """Inputs named in a text file (see :func:`expand_inputs`)."""
    check_regular_file(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFormatError(
            f"cannot read the input list {path} ({exc}); give a UTF-8 text file of paths"
        ) from exc
    base = path.parent
    entries = [line.strip() for line in lines]
    paths = [e if Path(e).is_absolute() else str(base / e) for e in entries if e and e[0] != "#"]
    return [p for entry in paths for p in _expand_glob(entry)]


def _expand_glob(pattern: str) -> list[str]:
    if not GLOB_CHARACTERS.search(pattern):
        return [pattern]
    matches = [p for p in sorted(glob.glob(pattern, recursive=True)) if not is_own_output(p)]
    return matches or [pattern]


def is_own_output(path: str | Path) -> bool:
    """True for files that s2clouds writes (masks and probabilities), never inputs."""
    name = Path(path).name
    return name.endswith(MASK_SUFFIX) or name.endswith(MASK_SUFFIX[:-4] + PROBA_SUFFIX)


def mask_name(product_id: str) -> str:
    """``<product_id>_cloudmask.tif``, with characters unsafe in file names replaced by ``_``."""
    return UNSAFE_NAME_CHARACTERS.sub("_", product_id) + MASK_SUFFIX


def is_finished(output: Path, options: PredictOptions) -> bool:
    """Outputs are written atomically, so a present file is complete; probabilities count too."""
    return output.is_file() and (not options.probabilities or probabilities_path(output).is_file())


# --------------------------------------------------------------------------- records and log
@dataclass
class SceneRecord:
    """The fate of one input in a batch run (one entry of the run log)."""

    input: str
    status: str = "pending"
    product_id: str | None = None
    output: str | None = None
    error: str | None = None
    seconds: float = 0.0
    cloud_percent: float | None = None
    shadow_percent: float | None = None
    valid_percent: float | None = None
    windows: int = 0
    exception: BaseException | None = field(default=None, repr=False)
    result: PredictionResult | None = field(default=None, repr=False)

    def fail(self, exc: BaseException) -> None:
        """Mark failed with a one-line message (library errors already say what to do)."""
        self.status, self.exception = "failed", exc
        message = one_line(str(exc)) or type(exc).__name__
        self.error = (
            message if isinstance(exc, S2CloudsError) else f"{type(exc).__name__}: {message}"
        )

    def succeed(self, result: PredictionResult) -> None:
        self.status, self.result, self.seconds = "done", result, round(result.seconds, 3)
        shares = result.class_fractions
        self.cloud_percent = round(100 * (shares["thick cloud"] + shares["thin cloud"]), 3)
        self.shadow_percent = round(100 * shares["cloud shadow"], 3)
        self.valid_percent = round(100 * result.valid_fraction, 3)

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "product_id": self.product_id,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "seconds": self.seconds,
            "cloud_percent": self.cloud_percent,
            "shadow_percent": self.shadow_percent,
            "valid_percent": self.valid_percent,
            "windows": self.windows,
        }


def read_run_log(outdir: Path) -> dict[str, dict[str, Any]]:
    """Entries of a previous run log by output path (empty when there is none or it is bad)."""
    try:
        scenes = json.loads((outdir / RUN_LOG).read_text(encoding="utf-8"))["scenes"]
        return {s["output"]: s for s in scenes if s.get("output")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_run_log(outdir: Path, records: Sequence[SceneRecord], run: dict[str, Any]) -> Path:
    """Write ``<outdir>/s2clouds_run.json`` atomically: run facts, counts and every scene."""
    path = outdir / RUN_LOG
    counts = {s: sum(r.status == s for r in records) for s in ("done", "skipped", "failed")}
    document = {**run, "counts": counts, "scenes": [r.as_json() for r in records]}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- jobs and engines
@dataclass(frozen=True)
class SceneJob:
    """One scene to predict: the scene (restricted to the model's bands), model, output."""

    index: int
    scene: Scene
    model_name: str
    output: Path
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class JobStarted:
    """The engine has begun the job's windows (the client opens its writers)."""

    job: int


@dataclass(frozen=True)
class WindowDone:
    """One computed window: mask (h, w) uint8, probabilities (4, h, w) uint8 percent or None."""

    job: int
    window: Window
    mask: np.ndarray
    probs: np.ndarray | None


@dataclass(frozen=True)
class JobFailed:
    """A window of the job failed for good (after retries); no more events come for it."""

    job: int
    error: BaseException


Event = JobStarted | WindowDone | JobFailed


class Engine(Protocol):
    """Computes the windows of jobs, yielding events; ``cancel`` drops a job's remaining work."""

    description: str
    dashboard_link: str | None

    def run(self, jobs: Sequence[SceneJob], options: PredictOptions) -> Iterator[Event]: ...

    def cancel(self, job: int) -> None: ...


@functools.lru_cache(maxsize=8)
def cached_model(name: str, bands: tuple[str, ...]) -> CloudModel:
    """The model ``name`` for ``bands``, built once per process (workers reuse it)."""
    return get_model(name, bands)


def window_task(
    scene: Scene, model_name: str, window: Window, options: PredictOptions
) -> tuple[np.ndarray, np.ndarray | None]:
    """Compute one window: mask (h, w) uint8 and, if asked for, probabilities (4, h, w) uint8
    percent. Takes only small picklable things (the scene's sources are paths), so it runs
    the same in this process or on any Dask worker that sees the input files. Library errors
    are raised :func:`~s2clouds.errors.detached` from their cause, so that they cross the
    cluster with their type and message."""
    try:
        model = cached_model(model_name, scene.bands)
        mask, probs = predict_window(scene, model, window, options)
    except S2CloudsError as exc:
        error = detached(exc)  # raised below, outside this block, so that it has no context
    else:
        return mask, probability_percent(probs, mask) if options.probabilities else None
    raise error


class SerialEngine:
    """Computes windows one after another in this process (no cluster)."""

    description = "this process (no cluster)"
    dashboard_link: str | None = None

    def __init__(self) -> None:
        self._cancelled: set[int] = set()

    def cancel(self, job: int) -> None:
        self._cancelled.add(job)

    def run(self, jobs: Sequence[SceneJob], options: PredictOptions) -> Iterator[Event]:
        for job in jobs:
            yield JobStarted(job.index)
            for window in job.windows:
                if job.index in self._cancelled:
                    break
                try:
                    mask, probs = window_task(job.scene, job.model_name, window, options)
                except Exception as exc:  # one scene's failure must not stop the batch
                    yield JobFailed(job.index, exc)
                    break
                yield WindowDone(job.index, window, mask, probs)


def wants_cluster(cluster: ClusterOptions | None, n_windows: int) -> bool:
    """Whether to use Dask: a scheduler is named, or workers are wanted and there is work to
    share (more than one window) and ``distributed`` is installed (``workers=None``: auto)."""
    import importlib.util

    from s2clouds.inference.distributed import scheduler_address

    if cluster is None or cluster.workers == 0:
        return False
    if scheduler_address(cluster) is not None or cluster.workers is not None:
        return True
    return n_windows > 1 and importlib.util.find_spec("distributed") is not None


@contextlib.contextmanager
def open_engine(cluster: ClusterOptions | None, jobs: Sequence[SceneJob]) -> Iterator[Engine]:
    """The engine for ``jobs``: a Dask engine when :func:`wants_cluster`, else serial."""
    if cluster is not None and wants_cluster(cluster, sum(len(j.windows) for j in jobs)):
        from s2clouds.inference.distributed import dask_engine

        with dask_engine(cluster) as engine:
            yield engine
    else:
        yield SerialEngine()


# --------------------------------------------------------------------------- running jobs
class _OpenScenes:
    """The client side of running jobs: writers of scenes in progress, progress bars."""

    def __init__(self, jobs: Sequence[SceneJob], records: Sequence[SceneRecord], progress: Any):
        self.jobs, self.records, self.progress = jobs, records, progress
        self.sinks: dict[int, SceneSink] = {}
        self.received: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.bars: dict[int, Any] = {}
        self.overall = progress.add_task("scenes", total=len(jobs))

    def start(self, index: int, options: PredictOptions) -> None:
        job = self.jobs[index]
        self.started[index] = time.perf_counter()
        sink = SceneSink(job.scene, job.model_name, job.output, options)
        self.sinks[index] = sink.__enter__()
        self.received[index] = 0
        self.bars[index] = self.progress.add_task(job.scene.product_id, total=len(job.windows))

    def add(self, event: WindowDone) -> bool:
        """Write a window; True when it was the scene's last one (the scene is then finished)."""
        self.sinks[event.job].add(event.window, event.mask, event.probs)
        self.received[event.job] += 1
        self.progress.advance(self.bars[event.job])
        if self.received[event.job] < len(self.jobs[event.job].windows):
            return False
        sink = self.sinks.pop(event.job)
        sink.__exit__(None, None, None)
        seconds = time.perf_counter() - self.started[event.job]
        self.records[event.job].succeed(sink.result(seconds))
        self._close_bar(event.job)
        return True

    def abort(self, index: int, exc: BaseException) -> None:
        """Drop the scene's partial output (nothing appears at its path) and record why."""
        sink = self.sinks.pop(index, None)
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.__exit__(type(exc), exc, exc.__traceback__)
        record = self.records[index]
        record.fail(exc)
        record.seconds = round(
            time.perf_counter() - self.started.get(index, time.perf_counter()), 3
        )
        if index in self.bars:
            self._close_bar(index)

    def _close_bar(self, index: int) -> None:
        self.progress.remove_task(self.bars.pop(index))
        self.progress.advance(self.overall)


def run_jobs(
    jobs: Sequence[SceneJob],
    records: Sequence[SceneRecord],
    engine: Engine,
    options: PredictOptions,
    *,
    on_scene_end: Callable[[], object] = lambda: None,
) -> None:
    """Run ``jobs`` on ``engine``, writing each scene as its windows arrive.

    ``records[i]`` belongs to ``jobs[i]`` and is updated to done or failed; ``on_scene_end`` is
    called after each scene ends (e.g. to rewrite the run log). On an interrupt, the outputs of
    unfinished scenes are removed and their records stay ``pending``.
    """
    with window_progress(options.progress) as progress:
        scenes = _OpenScenes(jobs, records, progress)
        try:
            for event in engine.run(jobs, options):
                if isinstance(event, JobStarted):
                    _guarded(scenes, engine, event.job, partial(scenes.start, event.job, options))
                elif isinstance(event, JobFailed):
                    scenes.abort(event.job, event.error)
                    on_scene_end()
                elif event.job in scenes.sinks and _guarded(
                    scenes, engine, event.job, partial(scenes.add, event)
                ):
                    on_scene_end()
        finally:
            for index in list(scenes.sinks):
                scenes.abort(index, OutputError("the run was interrupted"))
                records[index].status, records[index].error = "pending", None


def _guarded(scenes: _OpenScenes, engine: Engine, index: int, step: Callable[[], Any]) -> Any:
    """Run a client-side step of a scene; a failure (e.g. disk full) fails only that scene."""
    try:
        return step()
    except Exception as exc:  # one scene's output failing must not stop the batch
        engine.cancel(index)
        scenes.abort(index, exc)
        return True


# --------------------------------------------------------------------------- planning
def make_job(index: int, scene: Scene, model: CloudModel, output: Path, block: int) -> SceneJob:
    """The job for a prepared scene (see :func:`~s2clouds.inference.predict.prepare_scene`)."""
    return SceneJob(index, scene, model.name, output, tuple(scene.grid.windows(block)))


@dataclass
class BatchResult:
    """Records of every input, the run log path and the engine used."""

    records: list[SceneRecord]
    log: Path
    engine: str
    seconds: float

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def ok(self) -> bool:
        """True when no scene failed (done or skipped only)."""
        return all(r.status in ("done", "skipped") for r in self.records)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def run_batch(
    inputs: Sequence[str],
    outdir: str | Path,
    options: PredictOptions | None = None,
    *,
    overwrite: bool = False,
    cluster: ClusterOptions | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> BatchResult:
    """Predict every input into ``outdir`` (created if missing) as ``<product_id>_cloudmask.tif``.

    Scenes whose outputs exist are skipped unless ``overwrite``. ``cluster`` chooses the engine
    (see :func:`wants_cluster`; None: this process). ``announce`` receives one line naming the
    engine (and the Dask dashboard link when there is one). Failures are recorded, never raised,
    except for an output folder that cannot be created.
    """
    options = replace(options or PredictOptions(), overwrite=True, quicklook=None)
    outdir = Path(outdir).absolute()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {outdir}: {exc}") from exc
    check_outputs({"the run log": outdir / RUN_LOG}, inputs)
    check_writable(outdir / RUN_LOG)
    start, started_at = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    previous = read_run_log(outdir)
    records = [SceneRecord(input=str(source)) for source in inputs]
    jobs: list[SceneJob] = []
    owners: dict[Path, str] = {}
    for record in records:
        job = _plan_record(record, outdir, options, overwrite, previous, owners, len(jobs))
        if job is not None:
            jobs.append(job)
    job_records = [r for r in records if r.status == "pending"]
    run: dict[str, Any] = {
        "s2clouds_version": __version__,
        "started": started_at,
        "model": options.model,
        "block": options.block,
        "engine": None,
    }

    def log() -> Path:
        run["seconds"] = round(time.perf_counter() - start, 3)
        return write_run_log(outdir, records, run)

    with open_engine(cluster, jobs) as engine:
        run["engine"] = engine.description
        link = f"; dashboard {engine.dashboard_link}" if engine.dashboard_link else ""
        announce(f"{len(jobs)} scene(s) to predict on {engine.description}{link}")
        log()
        try:
            run_jobs(jobs, job_records, engine, options, on_scene_end=log)
        finally:
            path = log()
    return BatchResult(records, path, run["engine"], time.perf_counter() - start)


def _plan_record(
    record: SceneRecord,
    outdir: Path,
    options: PredictOptions,
    overwrite: bool,
    previous: dict[str, dict[str, Any]],
    owners: dict[Path, str],
    next_index: int,
) -> SceneJob | None:
    """Fill ``record`` for a skipped or unreadable input, or return the job that predicts it."""
    t0 = time.perf_counter()
    try:
        scene = open_scene(record.input, options)
        output = outdir / mask_name(scene.product_id)
        record.product_id, record.output = scene.product_id, str(output)
        _claim_output(output, record.input, owners)
        if is_finished(output, options) and not overwrite:
            _mark_skipped(record, previous.get(str(output), {}))
            return None
        check_scene_outputs(scene, output, options, extra={"the run log": outdir / RUN_LOG})
        scene, model = prepare_scene(scene, options)
    except Exception as exc:  # an unreadable input is reported, the others go on
        record.fail(exc)
        record.seconds = round(time.perf_counter() - t0, 3)
        return None
    job = make_job(next_index, scene, model, output, options.block)
    record.windows = len(job.windows)
    return job


def _claim_output(output: Path, source: str, owners: dict[Path, str]) -> None:
    """Refuse a second input whose product id gives the same output as an earlier one."""
    if output in owners:
        raise OutputError(
            f"{source} would write {output.name} like {owners[output]} (same product id); "
            "rename one input or run them into different folders"
        )
    owners[output] = source


def _mark_skipped(record: SceneRecord, before: dict[str, Any]) -> None:
    """Skipped scenes keep the percentages of the run that made them, when it was logged."""
    record.status = "skipped"
    for key in ("cloud_percent", "shadow_percent", "valid_percent", "windows"):
        if before.get(key) is not None:
            setattr(record, key, before[key])


# --------------------------------------------------------------------------- one scene
def predict_with_engine(
    source: str | Path,
    output: str | Path,
    options: PredictOptions | None = None,
    *,
    cluster: ClusterOptions | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> PredictionResult:
    """Like :func:`~s2clouds.inference.predict.predict`, with the windows of the one scene
    spread over ``cluster`` (see :func:`wants_cluster`). Errors are raised, not recorded."""
    options = options or PredictOptions()
    output = Path(output)
    scene = open_scene(source, options)
    check_scene_outputs(scene, output, options)
    scene, model = prepare_scene(scene, options)
    job = make_job(0, scene, model, output, options.block)
    record = SceneRecord(input=str(source), output=str(output))
    with open_engine(cluster, [job]) as engine:
        if engine.dashboard_link:
            announce(f"{len(job.windows)} windows on {engine.description}: {engine.dashboard_link}")
        run_jobs([job], [record], engine, options)
    if record.exception is not None:
        raise record.exception
    if record.result is None:
        raise OutputError(f"{source}: the prediction did not finish; run it again")
    return record.result
