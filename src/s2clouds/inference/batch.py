"""Many scenes, one output folder: resumable batch prediction over an engine of windows.

A batch run opens every input on the client (headers only), names its output from the
product id (``<product_id>_cloudmask.tif``), skips scenes whose outputs are already complete,
and hands the windows of the others to an *engine*:
:class:`~s2clouds.inference.engine.SerialEngine` computes them in this process,
:class:`~s2clouds.inference.distributed.DaskEngine` on a Dask cluster. Either way the
client receives ``(window, mask, probabilities)`` per window and writes each scene's COG
(atomically, see :mod:`s2clouds.io.write`), so memory is bounded by the window size and the
number of windows in flight, never by the scene size.

A scene that cannot be read, or whose windows fail, is recorded as failed and the others go
on. The run log ``<outdir>/s2clouds_run.json`` (rewritten atomically after every scene) lists
each input with its output, status (``done``, ``skipped``, ``failed`` or ``pending``), error,
seconds and cloud/shadow percentages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s2clouds import __version__
from s2clouds.errors import OutputError
from s2clouds.inference.distributed import ClusterOptions, open_engine
from s2clouds.inference.engine import SceneJob, make_job
from s2clouds.inference.options import PredictOptions
from s2clouds.inference.outputs import (
    QUICKLOOK_OUTPUT,
    RUN_LOG,
    check_scene_outputs,
    is_finished,
    mask_name,
    planned_outputs,
)
from s2clouds.inference.records import SceneRecord, read_run_log, write_run_log
from s2clouds.inference.sink import run_scenes
from s2clouds.inference.window import prepare_scene
from s2clouds.io.paths import check_outputs
from s2clouds.io.scenes import read_scene
from s2clouds.io.write import check_writable

#: what a batch reports (its engine): silent unless a handler is set
logger = logging.getLogger(__name__)


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
    cluster: ClusterOptions | None = None,
) -> BatchResult:
    """Predict every input into ``outdir`` (created if missing) as ``<product_id>_cloudmask.tif``.

    Scenes whose outputs are complete are redone when ``options.output.overwrite``, else
    skipped; an unfinished scene (e.g. a mask without the probabilities now asked for) is
    always completed, replacing what it has. ``cluster`` chooses the engine (see
    :func:`~s2clouds.inference.distributed.wants_cluster`; None: this process). One line naming
    the engine (and the Dask dashboard link when there is one) is logged (INFO).
    Failures are recorded, never raised, except for an output folder that cannot be created
    and a quicklook (:class:`~s2clouds.errors.OutputError`: it is written for one scene only).
    """
    options = options or PredictOptions()
    if options.output.quicklook is not None:
        raise OutputError("a quicklook is written for a single scene; predict one input for it")
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
        job = _plan_record(record, outdir, options, previous, owners, len(jobs))
        if job is not None:
            jobs.append(job)
    refuse_outputs_over_inputs(jobs, inputs, options)
    job_records = [r for r in records if r.status == "pending"]
    run: dict[str, Any] = {
        "s2clouds_version": __version__,
        "started": started_at,
        "model": options.run.model,
        "block": options.run.block,
        "engine": None,
    }

    def log() -> Path:
        run["seconds"] = round(time.perf_counter() - start, 3)
        return write_run_log(outdir, records, run)

    with open_engine(cluster, sum(len(job.windows) for job in jobs)) as engine:
        run["engine"] = engine.description
        link = f"; dashboard {engine.dashboard_link}" if engine.dashboard_link else ""
        logger.info("%d scene(s) to predict on %s%s", len(jobs), engine.description, link)
        log()
        try:
            # outputs of unfinished scenes are replaced (finished ones were planned out)
            writing = replace(options, output=replace(options.output, overwrite=True))
            run_scenes(jobs, job_records, engine, writing, on_scene_end=log)
        finally:
            path = log()
    return BatchResult(records, path, run["engine"], time.perf_counter() - start)


def _plan_record(
    record: SceneRecord,
    outdir: Path,
    options: PredictOptions,
    previous: dict[str, dict[str, Any]],
    owners: dict[Path, str],
    next_index: int,
) -> SceneJob | None:
    """Fill ``record`` for a skipped or unreadable input, or return the job that predicts it."""
    t0 = time.perf_counter()
    try:
        scene = read_scene(record.input, **options.read.as_kwargs())
        output = outdir / mask_name(scene.product_id)
        record.product_id, record.output = scene.product_id, str(output)
        _claim_output(output, record.input, owners)
        if is_finished(output, options.output) and not options.output.overwrite:
            _mark_skipped(record, previous.get(str(output), {}))
            return None
        writing = replace(options.output, overwrite=True)  # unfinished outputs are replaced
        check_scene_outputs(scene, output, writing, extra={"the run log": outdir / RUN_LOG})
        scene, model = prepare_scene(scene, options.run)
    except Exception as exc:  # an unreadable input is reported, the others go on
        record.fail(exc)
        record.seconds = round(time.perf_counter() - t0, 3)
        return None
    probabilities = options.output.probabilities
    job = make_job(next_index, scene, model, output, options.run, probabilities=probabilities)
    record.windows = len(job.windows)
    return job


def refuse_outputs_over_inputs(
    jobs: Sequence[SceneJob], inputs: Sequence[str], options: PredictOptions
) -> None:
    """Refuse the whole batch, before anything is written, when a scene's mask or
    probabilities would replace one of the batch's inputs or a file another scene reads
    (an earlier mask given as an input: :class:`~s2clouds.errors.OutputError`)."""
    read = [*inputs, *(name for job in jobs for name in job.scene.input_files())]
    outputs: dict[str, Path | None] = {}
    for job in jobs:
        for label, path in planned_outputs(job.output, options.output).items():
            if path is not None and label != QUICKLOOK_OUTPUT:
                outputs[f"{label} of {job.scene.product_id}"] = path
    check_outputs(outputs, read)


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
