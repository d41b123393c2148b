"""The client side of a run: :func:`run_jobs`, which hands the windows of any jobs to their
sinks as an engine reports them, progress bars, and the sinks of scenes (:class:`SceneSink`
writes one scene's windows; :class:`SceneOutput` is a scene job's sink)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.inference.engine import (
    Engine,
    Job,
    JobFailed,
    JobStarted,
    SceneJob,
    WindowDone,
)
from s2clouds.inference.options import OutputOptions, PredictOptions
from s2clouds.inference.outputs import probabilities_path
from s2clouds.inference.records import PredictionResult, SceneRecord
from s2clouds.io.grid import Window
from s2clouds.io.scene import Scene
from s2clouds.io.write import mask_writer, probability_writer
from s2clouds.labels.schemes import CANONICAL_CLASSES


class SceneSink:
    """Where the windows of one scene go: the mask COG, optional probabilities, class counts.

    A context manager around the writers (see :func:`~s2clouds.io.write.mask_writer`): on a
    clean exit the outputs are finished as COGs and renamed into place; on an exception nothing
    appears at ``output``. Windows may arrive in any order. After the ``with`` block,
    :meth:`result` gives the :class:`PredictionResult`.
    """

    def __init__(
        self, scene: Scene, model_name: str, output: str | Path, options: OutputOptions
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
        ``probs_percent`` (4, h, w) uint8 percent (see
        :func:`~s2clouds.inference.window.probability_percent`)."""
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
        """The finished prediction (the quicklook, for one scene, is drawn by the caller from
        the scene with all its bands: see :func:`~s2clouds.inference.predict.predict_scene`)."""
        counts = self.counts
        total_valid = counts[: len(CANONICAL_CLASSES)].sum()
        fractions = {
            name: float(counts[v] / total_valid) if total_valid else 0.0
            for v, name in CANONICAL_CLASSES.items()
        }
        return PredictionResult(
            output=self.output,
            probabilities=self.probabilities,
            quicklook=None,
            class_fractions=fractions,
            valid_fraction=float(total_valid / max(1, counts.sum())),
            shape=self.scene.grid.shape,
            resolution=self.scene.grid.resolution,
            seconds=seconds,
            model=self.model_name,
            pixel_size=self.scene.grid.pixel_size_text,
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


class JobSink(Protocol):
    """Where the results of one job's windows go, on the client (see :func:`run_jobs`)."""

    def open(self) -> None:
        """The job has started: open the outputs."""

    def add(self, window: Window, result: Any) -> None:
        """One window's result (windows arrive in any order)."""

    def close(self, seconds: float) -> None:
        """Every window has arrived (``seconds`` since the job started): finish the outputs."""

    def fail(self, error: BaseException, seconds: float) -> None:
        """The job failed: drop its partial outputs and keep why."""

    def drop(self, seconds: float) -> None:
        """The run was interrupted before the job finished: drop its partial outputs."""


class SceneOutput:
    """The sink of a scene job: its :class:`SceneSink` and its :class:`SceneRecord`, which
    ends done (with the :class:`PredictionResult`), failed, or pending (interrupted)."""

    def __init__(self, job: SceneJob, record: SceneRecord, options: OutputOptions) -> None:
        self.job, self.record, self.options = job, record, options
        self.sink: SceneSink | None = None

    def open(self) -> None:
        sink = SceneSink(self.job.scene, self.job.model_name, self.job.output, self.options)
        self.sink = sink.__enter__()

    def add(self, window: Window, result: Any) -> None:
        assert self.sink is not None
        mask, probs = result
        self.sink.add(window, mask, probs)

    def close(self, seconds: float) -> None:
        assert self.sink is not None
        sink, self.sink = self.sink, None
        sink.__exit__(None, None, None)
        self.record.succeed(sink.result(seconds))

    def fail(self, error: BaseException, seconds: float) -> None:
        """Nothing appears at the scene's outputs; the record says why."""
        sink, self.sink = self.sink, None
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.__exit__(type(error), error, error.__traceback__)
        self.record.fail(error)
        self.record.seconds = round(seconds, 3)

    def drop(self, seconds: float) -> None:
        self.fail(OutputError("the run was interrupted"), seconds)
        self.record.status, self.record.error = "pending", None


def scene_outputs(
    jobs: Sequence[SceneJob], records: Sequence[SceneRecord], options: OutputOptions
) -> list[SceneOutput]:
    """The sinks of scene ``jobs``: ``records[i]`` belongs to ``jobs[i]``."""
    return [SceneOutput(job, record, options) for job, record in zip(jobs, records, strict=True)]


class _Running:
    """The client side of running jobs: sinks of jobs in progress, progress bars."""

    def __init__(self, jobs: Sequence[Job], sinks: Sequence[JobSink], progress: Any):
        self.jobs = {job.index: job for job in jobs}
        self.sinks = {job.index: sink for job, sink in zip(jobs, sinks, strict=True)}
        self.progress = progress
        self.open: set[int] = set()
        self.received: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.bars: dict[int, Any] = {}
        self.overall = progress.add_task("scenes", total=len(jobs)) if len(jobs) > 1 else None

    def start(self, index: int) -> None:
        job = self.jobs[index]
        self.started[index] = time.perf_counter()
        self.sinks[index].open()
        self.open.add(index)
        self.received[index] = 0
        self.bars[index] = self.progress.add_task(job.description, total=len(job.windows))

    def add(self, event: WindowDone) -> bool:
        """Hand a window to its sink; True when it was the job's last one (it is then
        finished)."""
        self.sinks[event.job].add(event.window, event.result)
        self.received[event.job] += 1
        self.progress.advance(self.bars[event.job])
        if self.received[event.job] < len(self.jobs[event.job].windows):
            return False
        self.finish(event.job)
        return True

    def complete(self, index: int) -> None:
        """Open and close the sink of a job that has no window to compute."""
        self.start(index)
        self.finish(index)

    def finish(self, index: int) -> None:
        """Close the sink of a job whose every window was handed over."""
        self.open.discard(index)
        self.sinks[index].close(self._seconds(index))
        self._close_bar(index)

    def abort(self, index: int, exc: BaseException | None) -> None:
        """Drop the job's partial output: failed with ``exc``, or interrupted (None)."""
        self.open.discard(index)
        if exc is None:
            self.sinks[index].drop(self._seconds(index))
        else:
            self.sinks[index].fail(exc, self._seconds(index))
        if index in self.bars:
            self._close_bar(index)

    def _seconds(self, index: int) -> float:
        return time.perf_counter() - self.started.get(index, time.perf_counter())

    def _close_bar(self, index: int) -> None:
        self.progress.remove_task(self.bars.pop(index))
        if self.overall is not None:
            self.progress.advance(self.overall)


def run_jobs(
    jobs: Sequence[Job],
    sinks: Sequence[JobSink],
    engine: Engine,
    *,
    progress: bool = False,
    on_job_end: Callable[[], object] = lambda: None,
) -> None:
    """Run ``jobs`` on ``engine``, handing each window's result to the job's sink
    (``sinks[i]`` belongs to ``jobs[i]``) as it arrives: the one client loop of every driver.

    ``on_job_end`` is called after each job ends (e.g. to rewrite the run log). A failed job
    (its task raised, or its sink did) fails only itself. On an interrupt, the sinks of
    unfinished jobs are dropped. ``progress``: show progress bars.
    """
    with window_progress(progress) as bars:
        running = _Running(jobs, sinks, bars)
        try:
            for job in jobs:  # nothing left to compute (a resumed run): its sink completes now
                if not job.windows:
                    _guarded(running, engine, job.index, partial(running.complete, job.index))
                    on_job_end()
            for event in engine.run([job for job in jobs if job.windows]):
                if isinstance(event, JobStarted):
                    _guarded(running, engine, event.job, partial(running.start, event.job))
                elif isinstance(event, JobFailed):
                    if event.job in running.open:
                        running.abort(event.job, event.error)
                        on_job_end()
                elif event.job in running.open and _guarded(
                    running, engine, event.job, partial(running.add, event)
                ):
                    on_job_end()
        finally:
            for index in list(running.open):
                running.abort(index, None)


def run_scenes(
    jobs: Sequence[SceneJob],
    records: Sequence[SceneRecord],
    engine: Engine,
    options: PredictOptions,
    *,
    on_scene_end: Callable[[], object] = lambda: None,
) -> None:
    """Run scene ``jobs`` on ``engine`` (see :func:`run_jobs`), writing each scene as its
    windows arrive; ``records[i]`` belongs to ``jobs[i]`` and is updated to done or failed
    (pending when the run is interrupted)."""
    run_jobs(
        [job.job() for job in jobs],
        scene_outputs(jobs, records, options.output),
        engine,
        progress=options.progress,
        on_job_end=on_scene_end,
    )


def _guarded(running: _Running, engine: Engine, index: int, step: Callable[[], Any]) -> Any:
    """Run a client-side step of a job; a failure (e.g. disk full) fails only that job."""
    try:
        return step()
    except Exception as exc:  # one job's output failing must not stop the others
        engine.cancel(index)
        running.abort(index, exc)
        return True
