"""What every trainer shares (numpy only): validation scores from the benchmark's CloudSEN12
protocol, one metrics row per epoch or fit, and the progress bar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from s2clouds.benchmark.metrics import f1_score
from s2clouds.benchmark.protocols import CLOUD_TASK, SHADOW_TASK, CloudSEN12Protocol
from s2clouds.labels import CANONICAL_CLASSES

F1_COLUMNS = tuple(f"f1_{name.replace(' ', '_')}" for name in CANONICAL_CLASSES.values())


def validation_scores(protocol: CloudSEN12Protocol, losses: Sequence[float]) -> dict[str, float]:
    """Metrics row from a filled protocol: median per-image BOA per task, F1 per class."""
    summary = {row["task"]: row["median_boa"] for row in protocol.summary_rows()}
    counts = protocol.confusion("model").counts
    f1 = f1_score(counts)
    scores = {
        "val_loss": float(np.mean(losses)),
        "boa_cloud": float(summary.get(CLOUD_TASK.name, math.nan)),
        "boa_shadow": float(summary.get(SHADOW_TASK.name, math.nan)),
        **{column: float(v) for column, v in zip(F1_COLUMNS, f1, strict=True)},
        "f1_macro": float(f1_score(counts, "macro")),
    }
    scores["score"] = selection_score(scores)
    return scores


def selection_score(scores: dict[str, float]) -> float:
    """What picks the best checkpoint: mean of the defined cloud/shadow median BOAs, else
    macro F1, else minus the validation loss."""
    boas = [scores["boa_cloud"], scores["boa_shadow"]]
    defined = [b for b in boas if not math.isnan(b)]
    if defined:
        return float(np.mean(defined))
    if not math.isnan(scores["f1_macro"]):
        return scores["f1_macro"]
    return -scores["val_loss"]


def progress_bar(enabled: bool, unit: str = "batches") -> Any:
    """A rich progress bar counting ``unit`` (hidden when not ``enabled``)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} " + unit),
        TimeRemainingColumn(),
        disable=not enabled,
    )
