"""Engines run the window tasks of jobs and report each result as an event.

A :class:`Job` is any work cut into windows of a grid: a picklable ``task(plan, window)``,
the ``plan`` it reads (small frozen dataclasses holding file paths, never pixel arrays), and
the windows. Every driver is such a job: a scene to predict (:func:`make_job`, task
:func:`scene_window`), a time series (:mod:`~s2clouds.inference.series`), a composite
(:mod:`~s2clouds.mosaic.composite`), the app's whole-image proposal.

:class:`SerialEngine` runs the tasks one after another in this process;
:class:`~s2clouds.inference.distributed.DaskEngine` (which imports this module, never the
other way round) on a Dask cluster. The client side that consumes the events is
:func:`~s2clouds.inference.sink.run_jobs`, which hands each job's results to its sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from s2clouds.inference.options import RunOptions
from s2clouds.inference.window import compute_window
from s2clouds.io.grid import Window
from s2clouds.io.scene import Scene
from s2clouds.models.base import CloudModel

#: the unit of work of every engine: ``task(plan, window)`` -> the window's result
Task = Callable[[Any, Window], Any]


@dataclass(frozen=True)
class Job:
    """Windows of one piece of work: ``task(plan, window)`` is run for each of ``windows``.

    ``plan`` is what the task gets in this process; ``remote`` (default: ``plan``) what it
    gets on a cluster, where it must pickle (e.g. a model's name instead of the built
    model). ``name`` names the job in errors, ``label`` in its progress bar (default:
    ``"<name> windows"``). ``broadcast``: send the plan to every worker once (large plans,
    such as a composite's many inputs) instead of with each task."""

    index: int
    task: Task
    plan: Any = field(repr=False)
    windows: tuple[Window, ...]
    name: str = "job"
    remote: Any = field(default=None, repr=False)
    broadcast: bool = False
    label: str | None = None

    @property
    def description(self) -> str:
        """What the job's progress bar says."""
        return self.label or f"{self.name} windows"

    @property
    def cluster_plan(self) -> Any:
        """The plan a cluster's workers get."""
        return self.plan if self.remote is None else self.remote


@dataclass(frozen=True)
class ScenePlan:
    """What :func:`scene_window` needs: the scene (restricted to the model's bands), the
    model (built, or its registry name or file path on a cluster), the run options and
    whether windows come with probabilities."""

    scene: Scene
    model: CloudModel | str = field(repr=False)
    run: RunOptions
    probabilities: bool = False


def scene_window(plan: ScenePlan, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
    """One window of a scene: mask (h, w) uint8 and probabilities (4, h, w) uint8 percent or
    None (see :func:`~s2clouds.inference.window.compute_window`)."""
    return compute_window(plan.scene, plan.model, window, plan.run, plan.probabilities)


@dataclass(frozen=True)
class SceneJob:
    """One scene to predict: the scene (restricted to the model's bands), the model, output,
    the run options and whether its windows come with probabilities.

    :meth:`job` gives the engines' :class:`Job`: in-process engines use ``model`` as it is;
    a cluster rebuilds it on its workers from ``model_name`` (a registry name or a model
    file path)."""

    index: int
    scene: Scene
    model: CloudModel = field(compare=False, repr=False)
    output: Path
    windows: tuple[Window, ...]
    run: RunOptions = field(default_factory=RunOptions)
    probabilities: bool = False

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def source(self) -> str:
        """The scene as errors name it: its input path when known, else its product id."""
        return str(self.scene.meta.get("path") or self.scene.product_id)

    def job(self) -> Job:
        """The engines' job of this scene (task :func:`scene_window`)."""
        plan = ScenePlan(self.scene, self.model, self.run, self.probabilities)
        remote = ScenePlan(self.scene, self.model_name, self.run, self.probabilities)
        label = f"{self.scene.product_id} windows"
        return Job(self.index, scene_window, plan, self.windows, self.source, remote, label=label)


def make_job(
    index: int,
    scene: Scene,
    model: CloudModel,
    output: Path,
    run: RunOptions,
    *,
    probabilities: bool = False,
) -> SceneJob:
    """The job for a prepared scene (see :func:`~s2clouds.inference.window.prepare_scene`),
    cut into windows of ``run.block`` pixels."""
    windows = tuple(scene.grid.windows(run.block))
    return SceneJob(index, scene, model, output, windows, run, probabilities)


@dataclass(frozen=True)
class JobStarted:
    """The engine has begun the job's windows (the client opens its sink)."""

    job: int


@dataclass(frozen=True)
class WindowDone:
    """One computed window and what the job's task returned for it."""

    job: int
    window: Window
    result: Any


@dataclass(frozen=True)
class JobFailed:
    """A window of the job failed for good (after retries); no more events come for it."""

    job: int
    error: BaseException


Event = JobStarted | WindowDone | JobFailed


class Engine(Protocol):
    """Runs the windows of jobs, yielding events; ``cancel`` drops a job's remaining work."""

    description: str
    dashboard_link: str | None

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]: ...

    def cancel(self, job: int) -> None: ...


class SerialEngine:
    """Runs windows one after another in this process (no cluster), with each job's plan
    as it was made (e.g. its model as it was built)."""

    description = "this process (no cluster)"
    dashboard_link: str | None = None

    def __init__(self) -> None:
        self._cancelled: set[int] = set()

    def cancel(self, job: int) -> None:
        self._cancelled.add(job)

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        for job in jobs:
            yield JobStarted(job.index)
            for window in job.windows:
                if job.index in self._cancelled:
                    break
                try:
                    result = job.task(job.plan, window)
                except Exception as exc:  # one job's failure must not stop the others
                    yield JobFailed(job.index, exc)
                    break
                yield WindowDone(job.index, window, result)
