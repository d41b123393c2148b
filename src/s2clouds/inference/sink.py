"""The client side of a run: each scene's writers, progress bars, and :func:`run_jobs`,
which writes the windows of scene jobs as an engine reports them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.inference.engine import Engine, JobFailed, JobStarted, SceneJob, WindowDone
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


class _OpenScenes:
    """The client side of running jobs: writers of scenes in progress, progress bars."""

    def __init__(self, jobs: Sequence[SceneJob], records: Sequence[SceneRecord], progress: Any):
        self.jobs, self.records, self.progress = jobs, records, progress
        self.sinks: dict[int, SceneSink] = {}
        self.received: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.bars: dict[int, Any] = {}
        self.overall = progress.add_task("scenes", total=len(jobs)) if len(jobs) > 1 else None

    def start(self, index: int, options: OutputOptions) -> None:
        job = self.jobs[index]
        self.started[index] = time.perf_counter()
        sink = SceneSink(job.scene, job.model_name, job.output, options)
        self.sinks[index] = sink.__enter__()
        self.received[index] = 0
        description = f"{job.scene.product_id} windows"
        self.bars[index] = self.progress.add_task(description, total=len(job.windows))

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
        if self.overall is not None:
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
            for event in engine.run(jobs, options.run):
                if isinstance(event, JobStarted):
                    start = partial(scenes.start, event.job, options.output)
                    _guarded(scenes, engine, event.job, start)
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
