"""What predictions produced: the result of one scene, the record of each input of a batch,
and the batch's run log (``<outdir>/s2clouds_run.json``, rewritten atomically)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2clouds.errors import S2CloudsError, one_line
from s2clouds.inference.outputs import RUN_LOG
from s2clouds.io.write import atomic_path


@dataclass
class PredictionResult:
    """What a prediction produced: paths, class shares of valid pixels, timing."""

    output: Path
    probabilities: Path | None
    quicklook: Path | None
    class_fractions: dict[str, float]
    valid_fraction: float
    shape: tuple[int, int]
    resolution: float
    seconds: float
    model: str
    #: :attr:`resolution` for people: ``"10 m"``, or degrees with their metres when geographic
    pixel_size: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SceneRecord:
    """The fate of one input in a run (one entry of the run log)."""

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
    """Entries of a previous run log by output path (empty when there is none or it is bad:
    a folder, not JSON, nested too deep). Only entries that are objects with a text
    ``output`` are kept, and of their numbers only finite ones (see
    :data:`LOGGED_NUMBERS`)."""
    try:
        document = json.loads((outdir / RUN_LOG).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    scenes = document.get("scenes") if isinstance(document, dict) else None
    if not isinstance(scenes, list):
        return {}
    return {
        scene["output"]: _logged_numbers(scene)
        for scene in scenes
        if isinstance(scene, dict) and isinstance(scene.get("output"), str) and scene["output"]
    }


#: numbers of a run log entry that a skipped scene keeps, and their types
LOGGED_NUMBERS = {
    "cloud_percent": float,
    "shadow_percent": float,
    "valid_percent": float,
    "windows": int,
}


def _logged_numbers(scene: dict[str, Any]) -> dict[str, Any]:
    """``scene`` with :data:`LOGGED_NUMBERS` that are not finite numbers of their kind
    (text, NaN, booleans) dropped."""
    kept = {k: v for k, v in scene.items() if k not in LOGGED_NUMBERS}
    for key, kind in LOGGED_NUMBERS.items():
        value = scene.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if math.isfinite(value) and (kind is float or isinstance(value, int)):
            kept[key] = value
    return kept


def write_run_log(outdir: Path, records: Sequence[SceneRecord], run: dict[str, Any]) -> Path:
    """Write ``<outdir>/s2clouds_run.json`` atomically: run facts, counts and every scene."""
    path = outdir / RUN_LOG
    counts = {s: sum(r.status == s for r in records) for s in ("done", "skipped", "failed")}
    document = {**run, "counts": counts, "scenes": [r.as_json() for r in records]}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path
