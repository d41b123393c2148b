"""Windows of jobs on a Dask cluster: a local one by default, or a running scheduler.

:class:`DaskEngine` submits one task per window of a job (the job's task, its plan, whose
scenes are small frozen dataclasses holding file paths, and the window; never pixel arrays),
keeps at most ``max_in_flight`` windows submitted, and hands each result back to the client
as it completes (``distributed.as_completed``), where :func:`~s2clouds.inference.sink.run_jobs`
hands it to the job's sink. Client memory is therefore bounded by ``max_in_flight`` windows,
worker memory by one window per thread. :func:`open_engine` chooses the engine of every
driver (predict, batch, series, composite).

Fault tolerance comes from Dask: a task whose worker dies is rescheduled on another worker
(up to ``distributed.scheduler.allowed-failures`` times), and a task that raises is retried
``retries`` times before its scene is reported as failed.

Workers must see the input files at the same paths as the client (one machine, or a shared
file system). ``dask[distributed]`` is optional: ``pip install "s2clouds[distributed]"``.

A local cluster never opens an unauthenticated port: its scheduler and workers listen on
127.0.0.1 with TLS and temporary certificates made for this run
(``distributed.security.Security.temporary()``), so only this client, which holds them, can
connect (another user of the machine cannot submit code). Its worker count is capped at the
CPU cores. A ``--scheduler`` that does not answer as a Dask scheduler within
``connect_timeout`` seconds (a typo, an HTTP server) is a one-line :class:`ClusterError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from s2clouds._optional import install_hint, require
from s2clouds.errors import ClusterError, one_line
from s2clouds.inference.engine import (
    Engine,
    Event,
    Job,
    JobFailed,
    JobStarted,
    SerialEngine,
    WindowDone,
)
from s2clouds.io.grid import Window
from s2clouds.resources import MODEL_THREADS_ENV, cpu_cores

SCHEDULER_ENV = "S2CLOUDS_SCHEDULER"
INSTALL_HINT = install_hint("distributed")
LOOPBACK = "127.0.0.1"
#: schemes of the addresses a Dask scheduler listens on
SCHEDULER_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


@dataclass(frozen=True)
class ClusterOptions:
    """Where windows are computed.

    ``scheduler``: address of a running Dask scheduler (``tcp://HOST:PORT``); default: the
    environment variable ``S2CLOUDS_SCHEDULER``; when neither is set a local cluster is
    started on the loopback interface. ``workers``: local workers (None: one per CPU core,
    and only when there is more than one window to share; 0: no cluster). ``processes``:
    worker processes (default) or threads. ``dashboard``: serve the Dask dashboard of a local
    cluster on 127.0.0.1 (shown only when bokeh is installed). ``retries``: re-runs of a
    window task that raised. ``max_in_flight``: windows submitted at once (default: twice the
    cluster's threads, at least 2), which bounds the client's memory. ``connect_timeout``:
    seconds a named scheduler has to answer.
    """

    scheduler: str | None = None
    workers: int | None = None
    processes: bool = True
    threads_per_worker: int = 1
    dashboard: bool = True
    retries: int = 1
    max_in_flight: int | None = None
    connect_timeout: float = 20.0


def scheduler_address(options: ClusterOptions) -> str | None:
    """The scheduler to connect to: the option, else ``$S2CLOUDS_SCHEDULER``, else None."""
    return options.scheduler or os.environ.get(SCHEDULER_ENV) or None


def _require_distributed() -> None:
    if importlib.util.find_spec("distributed") is None:
        require(
            "distributed", "distributed", purpose="running on a Dask cluster", error=ClusterError
        )


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` and a description: to the scheduler, or to a new local cluster
    (loopback only, TLS with temporary certificates, closed on exit)."""
    _require_distributed()
    address = scheduler_address(options)
    if address is not None:
        with connect_scheduler(address, options.connect_timeout) as client:
            check_workers_import_s2clouds(client, address)
            yield client, f"the Dask scheduler at {address}"
        return
    with local_cluster(options) as (client, description):
        yield client, description


@contextlib.contextmanager
def connect_scheduler(address: str, timeout: float) -> Iterator[Any]:
    """A client of the running scheduler at ``address``; a one-line :class:`ClusterError`
    when it is not an address, or nothing answers there as a Dask scheduler within
    ``timeout`` seconds (an HTTP server, a closed port)."""
    from distributed import Client

    hint = f"start it (dask scheduler) or unset scheduler= / ${SCHEDULER_ENV}"
    if "://" not in address and re.fullmatch(r"[\w.\-]+:\d+", address):
        address = f"tcp://{address}"  # HOST:PORT, as Dask takes it
    if not address.startswith(SCHEDULER_SCHEMES) or ":" not in address.split("://", 1)[1]:
        raise ClusterError(
            f"scheduler={address} is not the address of a Dask scheduler "
            f"(tcp://HOST:PORT or tls://HOST:PORT); {hint}",
            param="scheduler",
        )
    try:
        identity = asyncio.run(_identity(address, timeout))
        if not (isinstance(identity, dict) and identity.get("type") == "Scheduler"):
            raise ValueError(f"it answered {str(identity)[:80]!r}, not as a scheduler")
        client = Client(address, timeout=f"{timeout}s")
    except (TimeoutError, OSError, ValueError, TypeError, RuntimeError) as exc:
        reason = one_line(str(exc))[:200] or "no answer"
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s "
            f"({type(exc).__name__}: {reason}); {hint}"
        ) from exc
    with client:
        yield client


async def _identity(address: str, timeout: float) -> Any:
    """What the server at ``address`` says it is (a scheduler answers ``{"type":
    "Scheduler", ...}``), every step bounded by ``timeout`` seconds: Dask's own connect
    waits for ever on a server that accepts and never answers in its protocol (HTTP)."""
    from distributed.comm import connect as comm_connect
    from distributed.security import Security

    arguments = Security().get_connection_args("client")  # TLS settings of the Dask config
    comm = await asyncio.wait_for(comm_connect(address, timeout=timeout, **arguments), timeout)
    try:
        await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
        return await asyncio.wait_for(comm.read(), timeout)
    finally:
        comm.abort()


def local_workers(requested: int | None) -> int:
    """Worker count of a local cluster: ``requested`` (None: one per core), capped at the
    CPU cores with a warning (more workers than cores only add memory)."""
    cores = cpu_cores()
    if requested is None:
        return cores
    if requested > cores:
        warnings.warn(
            f"workers={requested} is more than the {cores} CPU core(s) here; using {cores} "
            "local workers",
            stacklevel=3,
        )
        return cores
    return requested


@contextlib.contextmanager
def local_cluster(options: ClusterOptions) -> Iterator[tuple[Any, str]]:
    """A new local cluster on 127.0.0.1, TLS with temporary certificates (only this client
    can connect), and its client; closed on exit."""
    from distributed import Client, LocalCluster

    security = temporary_security()
    n_workers = local_workers(options.workers)
    # worker processes share the cores: each model gets its share, not every core
    share = max(1, cpu_cores() // n_workers) * options.threads_per_worker
    # (a Nanny's option: thread workers share this process and its setting)
    worker_env = {"env": {MODEL_THREADS_ENV: str(share)}} if options.processes else {}
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=options.threads_per_worker,
        **worker_env,
        processes=options.processes,
        protocol="tls://",  # also for threads: every port authenticates its clients
        security=security,
        host=LOOPBACK,
        # the scheduler always serves HTTP (health, metrics; it runs no code): on loopback,
        # port 8787 when the dashboard is wanted, any free port when not
        dashboard_address=f"{LOOPBACK}:{8787 if options.dashboard else 0}",
        scheduler_kwargs={"dashboard": options.dashboard},
        silence_logs=logging.CRITICAL,  # failed windows are reported by s2clouds, in one line
    )
    kind = "processes" if options.processes else "threads"
    threads = options.threads_per_worker
    with cluster, Client(cluster, security=security) as client:
        yield client, f"a local Dask cluster ({n_workers} worker {kind}, {threads} thread(s) each)"


def temporary_security() -> Any:
    """TLS with certificates made for this run (``Security.temporary()``), which every
    connection to a local cluster must present."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError as exc:  # the cryptography package is missing
        raise ClusterError(
            "a local Dask cluster needs the cryptography package for its TLS certificates: "
            f"{INSTALL_HINT}, or run with workers=0"
        ) from exc


def check_workers_import_s2clouds(client: Any, address: str) -> None:
    """Refuse a cluster whose workers cannot import s2clouds (their tasks could never run)."""
    found = client.run(importlib.util.find_spec, "s2clouds")
    missing = sorted(worker for worker, spec in found.items() if spec is None)
    if missing:
        raise ClusterError(
            f"workers of {address} cannot import s2clouds ({', '.join(missing)}); install the "
            "same s2clouds version in the workers' environment"
        )


def dashboard_link(client: Any, options: ClusterOptions) -> str | None:
    """The dashboard URL when one is served: a remote scheduler's, or ours with bokeh."""
    services = client.scheduler_info().get("services", {})
    if "dashboard" not in services:
        return None
    remote = scheduler_address(options) is not None
    local_ok = options.dashboard and importlib.util.find_spec("bokeh") is not None
    return str(client.dashboard_link) if remote or local_ok else None


class DaskEngine:
    """Runs the window tasks of jobs on a Dask cluster through ``client`` (see the module
    docstring). Each job's task must be importable or picklable by value on the workers,
    and its ``cluster_plan`` picklable."""

    def __init__(
        self,
        client: Any,
        *,
        retries: int = 1,
        max_in_flight: int | None = None,
        description: str = "Dask cluster",
        dashboard_link: str | None = None,
    ) -> None:
        self.client, self.retries = client, retries
        threads = sum(client.nthreads().values()) or 1
        self.max_in_flight = max(2, max_in_flight or 2 * threads)
        self.description, self.dashboard_link = description, dashboard_link
        self._cancelled: set[int] = set()
        self._futures: dict[Any, tuple[int, Window]] = {}
        self._names: dict[int, str] = {}
        self._plans: dict[int, Any] = {}

    def cancel(self, job: int) -> None:
        """Drop the job's windows still queued or running; their results are ignored."""
        self._cancelled.add(job)
        doomed = [f for f, (j, _) in self._futures.items() if j == job]
        if doomed:
            self.client.cancel(doomed)

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        """Submit windows in job order, ``max_in_flight`` at a time; yield results as they
        complete (any order within and across jobs)."""
        from distributed import as_completed

        self._names.update({job.index: job.name for job in jobs})
        pending = ((job, window) for job in jobs for window in job.windows)
        started: set[int] = set()
        completed = as_completed()
        try:
            yield from self._refill(pending, started, completed)
            while self._futures:
                future = next(completed)
                job, window = self._futures.pop(future)
                if job not in self._cancelled:
                    yield self._event(future, job, window)
                future.release()
                yield from self._refill(pending, started, completed)
        finally:  # interrupted or abandoned: stop what is still queued on the cluster
            if self._futures:
                self.client.cancel(list(self._futures))
                self._futures.clear()
            self._plans.clear()

    def _event(self, future: Any, job: int, window: Window) -> Event:
        """The result of a completed window. A result whose worker died before it was fetched
        is recomputed by Dask, and ``result()`` waits for it; an error fails the job."""
        try:
            result = future.result()
        except (Exception, asyncio.CancelledError) as exc:  # its error, KilledWorker, cancelled
            self.cancel(job)
            return JobFailed(job, self._cluster_error(exc, job, window))
        return WindowDone(job, window, result)

    def _cluster_error(self, exc: BaseException, job: int, window: Window) -> BaseException:
        """``exc`` as the client should see it: library errors (and other errors raised by
        the task) as they are, a worker lost or a task cancelled as a one-line
        :class:`ClusterError` that names the job and the window."""
        name = self._names.get(job, "the job")
        return cluster_error(exc, f"window at row {window.row}, column {window.col} of {name}")

    def _plan(self, job: Job) -> Any:
        """The plan the job's tasks get: itself, or a future of it on every worker when the
        job asks for a broadcast (scattered once, when the job starts)."""
        if not job.broadcast:
            return job.cluster_plan
        if job.index not in self._plans:
            self._plans[job.index] = self.client.scatter(
                job.cluster_plan, broadcast=True, hash=False
            )
        return self._plans[job.index]

    def _refill(
        self, pending: Iterator[tuple[Job, Window]], started: set[int], completed: Any
    ) -> Iterator[Event]:
        """Submit windows until ``max_in_flight`` are out; announce jobs as they start."""
        token = uuid.uuid4().hex[:8]
        while len(self._futures) < self.max_in_flight:
            item = next(pending, None)
            if item is None:
                return
            job, window = item
            if job.index in self._cancelled:
                continue
            if job.index not in started:
                started.add(job.index)
                yield JobStarted(job.index)
            future = self.client.submit(
                job.task,
                self._plan(job),
                window,
                key=f"s2clouds-{_key_name(job)}-r{window.row}-c{window.col}-{token}",
                retries=self.retries,
                priority=-job.index,
                pure=False,
            )
            self._futures[future] = (job.index, window)
            completed.add(future)


def _key_name(job: Job) -> str:
    """The job's name as a part of Dask task keys (its file name, no separators)."""
    name = job.name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or f"job{job.index}"
    return re.sub(r"[^\w.\-]+", "_", name)[:80]


def cluster_error(exc: BaseException, what: str) -> BaseException:
    """``exc`` of a task (``what`` names its work) as the client should see it: errors the
    task raised as they are, a worker lost or a task cancelled as a one-line
    :class:`ClusterError`."""
    if not _from_the_cluster(exc):
        return exc
    return ClusterError(
        f"{what} did not finish on the cluster ({type(exc).__name__}: "
        f"{one_line(str(exc))[:300]}); check the workers' memory and logs, or use a smaller "
        "block="
    )


def _from_the_cluster(exc: BaseException) -> bool:
    """Whether ``exc`` comes from Dask itself (a lost worker, a cancelled or timed-out
    task) rather than from the window's own computation."""
    return isinstance(exc, asyncio.CancelledError | TimeoutError) or type(
        exc
    ).__module__.startswith("distributed")


@contextlib.contextmanager
def dask_engine(options: ClusterOptions) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` on the cluster that ``options`` names (closed on exit)."""
    with connect(options) as (client, description):
        yield DaskEngine(
            client,
            retries=options.retries,
            max_in_flight=options.max_in_flight,
            description=description,
            dashboard_link=dashboard_link(client, options),
        )


def wants_cluster(cluster: ClusterOptions | None, n_windows: int) -> bool:
    """Whether to use Dask: a scheduler is named, or workers are wanted and there is work to
    share (more than one window) and ``distributed`` is installed (``workers=None``: auto)."""
    if cluster is None or cluster.workers == 0:
        return False
    if scheduler_address(cluster) is not None or cluster.workers is not None:
        return True
    return n_windows > 1 and importlib.util.find_spec("distributed") is not None


@contextlib.contextmanager
def open_engine(cluster: ClusterOptions | None, n_windows: int) -> Iterator[Engine]:
    """The engine of every driver for ``n_windows`` windows of work: a Dask engine when
    :func:`wants_cluster`, else a :class:`~s2clouds.inference.engine.SerialEngine`."""
    if wants_cluster(cluster, n_windows):
        assert cluster is not None
        with dask_engine(cluster) as engine:
            yield engine
    else:
        yield SerialEngine()
