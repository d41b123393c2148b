"""The engine of every driver runs any picklable (plan, window) task into any sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from affine import Affine

from s2clouds.inference.engine import Job, SerialEngine
from s2clouds.inference.sink import run_jobs
from s2clouds.io.grid import Grid, Window


@dataclass(frozen=True)
class Plan:
    offset: int
    fail_at_row: int | None = None


def window_sum(plan: Plan, window: Window) -> int:
    if plan.fail_at_row is not None and window.row >= plan.fail_at_row:
        raise ValueError(f"no window at row {window.row}")
    return window.row * 1000 + window.col + plan.offset


class Collect:
    def __init__(self) -> None:
        self.results: dict[Window, Any] = {}
        self.state = "new"
        self.error: BaseException | None = None

    def open(self) -> None:
        self.state = "open"

    def add(self, window: Window, result: Any) -> None:
        self.results[window] = result

    def close(self, seconds: float) -> None:
        self.state = "closed"

    def fail(self, error: BaseException, seconds: float) -> None:
        self.state, self.error = "failed", error

    def drop(self, seconds: float) -> None:
        self.state = "dropped"


GRID = Grid(None, Affine.identity(), 100, 70)


def test_every_window_of_every_job_reaches_its_sink() -> None:
    windows = tuple(GRID.windows(32))
    jobs = [Job(i, window_sum, Plan(offset=i), windows, name=f"job {i}") for i in range(2)]
    sinks = [Collect(), Collect()]
    run_jobs(jobs, sinks, SerialEngine())
    for i, sink in enumerate(sinks):
        assert sink.state == "closed"
        assert sink.results == {w: w.row * 1000 + w.col + i for w in windows}


def test_a_failing_task_fails_only_its_job() -> None:
    windows = tuple(GRID.windows(32))
    jobs = [
        Job(0, window_sum, Plan(0, fail_at_row=64), windows),
        Job(1, window_sum, Plan(1), windows),
    ]
    sinks = [Collect(), Collect()]
    run_jobs(jobs, sinks, SerialEngine())
    assert sinks[0].state == "failed" and "row 64" in str(sinks[0].error)
    assert sinks[1].state == "closed" and len(sinks[1].results) == len(windows)


def test_a_job_with_nothing_left_to_compute_completes_its_sink() -> None:
    """A resumed run whose windows were all saved: its sink opens and closes (writing what
    it holds), the engine runs only the other jobs, and the job's end is reported."""
    windows = tuple(GRID.windows(32))
    jobs = [Job(0, window_sum, Plan(0), ()), Job(1, window_sum, Plan(1), windows)]
    sinks = [Collect(), Collect()]
    ended: list[int] = []
    run_jobs(jobs, sinks, SerialEngine(), on_job_end=lambda: ended.append(1))
    assert sinks[0].state == "closed" and sinks[0].results == {}
    assert sinks[1].state == "closed" and len(sinks[1].results) == len(windows)
    assert len(ended) == 2


def test_an_interrupt_drops_unfinished_jobs() -> None:
    def interrupted(plan: Plan, window: Window) -> int:
        if window.row:
            raise KeyboardInterrupt
        return 0

    sink = Collect()
    with pytest.raises(KeyboardInterrupt):
        run_jobs([Job(0, interrupted, Plan(0), tuple(GRID.windows(32)))], [sink], SerialEngine())
    assert sink.state == "dropped"


def test_dask_runs_the_same_tasks() -> None:
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from s2clouds.inference.distributed import DaskEngine

    windows = tuple(GRID.windows(32))
    jobs = [
        Job(0, window_sum, Plan(5), windows, name="by value"),
        Job(1, window_sum, Plan(7), windows, name="broadcast", broadcast=True),
    ]
    sinks = [Collect(), Collect()]
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        run_jobs(jobs, sinks, DaskEngine(client, max_in_flight=3))
    for sink, offset in zip(sinks, (5, 7), strict=True):
        assert sink.state == "closed"
        assert sink.results == {w: w.row * 1000 + w.col + offset for w in windows}
    assert np.all([isinstance(v, int) for v in sinks[0].results.values()])
