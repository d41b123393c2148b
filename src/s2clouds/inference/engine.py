"""Engines compute the windows of scene jobs and report each as an event.

:class:`SerialEngine` computes them one after another in this process;
:class:`~s2clouds.inference.distributed.DaskEngine` (which imports this module, never the
other way round) on a Dask cluster. The client side that writes the events is
:func:`~s2clouds.inference.sink.run_jobs`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from s2clouds.inference.options import RunOptions
from s2clouds.inference.window import compute_window
from s2clouds.io.grid import Window
from s2clouds.io.scene import Scene
from s2clouds.models.base import CloudModel


@dataclass(frozen=True)
class SceneJob:
    """One scene to predict: the scene (restricted to the model's bands), the model, output,
    and whether its windows come with probabilities.

    In-process engines use ``model`` as it is; a cluster rebuilds it on its workers from
    ``model_name`` (a registry name or a model file path)."""

    index: int
    scene: Scene
    model: CloudModel = field(compare=False, repr=False)
    output: Path
    windows: tuple[Window, ...]
    probabilities: bool = False

    @property
    def model_name(self) -> str:
        return self.model.name


def make_job(
    index: int,
    scene: Scene,
    model: CloudModel,
    output: Path,
    block: int,
    *,
    probabilities: bool = False,
) -> SceneJob:
    """The job for a prepared scene (see :func:`~s2clouds.inference.window.prepare_scene`)."""
    windows = tuple(scene.grid.windows(block))
    return SceneJob(index, scene, model, output, windows, probabilities)


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

    def run(self, jobs: Sequence[SceneJob], run: RunOptions) -> Iterator[Event]: ...

    def cancel(self, job: int) -> None: ...


class SerialEngine:
    """Computes windows one after another in this process (no cluster), with each job's
    model as it was built."""

    description = "this process (no cluster)"
    dashboard_link: str | None = None

    def __init__(self) -> None:
        self._cancelled: set[int] = set()

    def cancel(self, job: int) -> None:
        self._cancelled.add(job)

    def run(self, jobs: Sequence[SceneJob], run: RunOptions) -> Iterator[Event]:
        for job in jobs:
            yield JobStarted(job.index)
            for window in job.windows:
                if job.index in self._cancelled:
                    break
                try:
                    mask, probs = compute_window(
                        job.scene, job.model, window, run, job.probabilities
                    )
                except Exception as exc:  # one scene's failure must not stop the batch
                    yield JobFailed(job.index, exc)
                    break
                yield WindowDone(job.index, window, mask, probs)
