"""Training of the LightGBM pixel model (no torch: needs only ``s2clouds[pixel]``).

Labelled pixels are drawn from every sample of a dataset reader (balanced across the
classes present in each sample; 255 and invalid pixels are never drawn), turned into the
feature rows of :mod:`s2clouds.models.pixel_features` and fitted with multiclass gradient
boosting, weighted so that rare classes count as much as common ones. Scribbles work the
same way: only the scribbled pixels carry labels (:func:`fit_scribbles`), as in the IRIS
annotation tool's LightGBM assistant.

A run writes into ``out_dir``: ``pixel.lgbm`` (LightGBM text model), ``pixel.json`` (its
weight spec with sha256) and ``metrics.json`` (validation scores from the benchmark's
CloudSEN12 protocol, pixel counts and timing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.bands import RGBN_BANDS, canonical_band_names
from s2clouds.benchmark.protocols import CloudSEN12Protocol
from s2clouds.datasets.base import CloudDataset
from s2clouds.errors import DatasetError, ModelError
from s2clouds.io.write import atomic_path
from s2clouds.labels import NODATA
from s2clouds.models.base import N_CLASSES, ModelContext
from s2clouds.models.pixel import PixelModel, import_lightgbm, pixel_spec
from s2clouds.models.pixel_features import default_features, pixel_features
from s2clouds.resources import cpu_cores
from s2clouds.train.data import SampleSource, train_val_sources
from s2clouds.train.scoring import progress_bar, validation_scores

MODEL_FILE, METRICS_FILE = "pixel.lgbm", "metrics.json"
#: widest context (radius in pixels) of the features a scribble fit uses
SCRIBBLE_RADIUS = 15


@dataclass(frozen=True)
class PixelTrainConfig:
    """Settings of one fit. ``features``: feature names (default: every feature the bands
    allow); ``pixels_per_sample``: labelled pixels drawn per sample; ``max_pixels``: cap on
    all rows; ``rounds``: boosting rounds (fewer when validation stops improving for
    ``early_stopping`` rounds)."""

    bands: tuple[str, ...] = RGBN_BANDS
    features: tuple[str, ...] | None = None
    rounds: int = 200
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_data_in_leaf: int = 40
    pixels_per_sample: int = 4000
    max_pixels: int = 2_000_000
    early_stopping: int = 20
    seed: int = 0
    threads: int | None = None

    def resolved_features(self) -> tuple[str, ...]:
        return self.features or default_features(self.bands)

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "objective": "multiclass",
            "num_class": N_CLASSES,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "num_threads": self.threads or cpu_cores(),
            "verbose": -1,
        }


@dataclass(frozen=True)
class PixelTrainResult:
    """Where the model went and how it scored on the validation samples."""

    path: Path
    scores: dict[str, float]
    train_pixels: int
    rounds: int
    seconds: float


# ---------------------------------------------------------------------------- pixels
def balanced_draw(target: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of up to ``n`` labelled pixels of ``target`` (H, W) uint8, split evenly
    over the classes present (a class with fewer pixels gives all it has)."""
    flat = target.ravel()
    classes = [c for c in range(N_CLASSES) if np.any(flat == c)]
    if not classes:
        return np.empty(0, dtype=np.int64)
    share = max(1, n // len(classes))
    picks = []
    for c in classes:
        where = np.flatnonzero(flat == c)
        picks.append(where if where.size <= share else rng.choice(where, share, replace=False))
    return np.sort(np.concatenate(picks))


def feature_rows(
    image: np.ndarray,
    target: np.ndarray,
    bands: Sequence[str],
    features: Sequence[str],
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows (N, F) float32, labels (N,) uint8)`` of up to ``n`` labelled pixels of one
    image (C, H, W) reflectance with its canonical target (H, W) (255 = unlabelled)."""
    picked = balanced_draw(target, n, rng)
    if picked.size == 0:
        return np.empty((0, len(features)), np.float32), np.empty(0, np.uint8)
    stack = pixel_features(image, bands, features).reshape(len(features), -1)
    return stack[:, picked].T.copy(), target.ravel()[picked]


def collect_rows(
    source: SampleSource, config: PixelTrainConfig, *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels drawn from every sample of ``source`` (seeded)."""
    rng = np.random.default_rng(config.seed)
    features = config.resolved_features()
    per_sample = min(config.pixels_per_sample, max(1, config.max_pixels // len(source)))
    rows, labels = [], []
    with progress_bar(progress, "samples") as bar:
        task = bar.add_task("drawing pixels", total=len(source))
        for position in range(len(source)):
            image, target, _ = source.arrays(position)
            x, y = feature_rows(image, target, source.bands, features, per_sample, rng)
            rows.append(x)
            labels.append(y)
            bar.advance(task)
    x_all, y_all = np.concatenate(rows), np.concatenate(labels)
    if y_all.size == 0:
        raise DatasetError(
            "no labelled pixels to train on: every sample is unlabelled (255) or invalid; "
            "check the dataset's label layer and scheme (e.g. -O scheme=canonical)"
        )
    return x_all, y_all


def class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights (N,) float32: inverse class frequency, mean 1."""
    counts = np.bincount(labels, minlength=N_CLASSES).astype(np.float64)
    inverse = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    weights = inverse[labels]
    return (weights / weights.mean()).astype(np.float32)


# ---------------------------------------------------------------------------- fitting
def fit_booster(
    rows: np.ndarray,
    labels: np.ndarray,
    config: PixelTrainConfig,
    *,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
    weights: np.ndarray | None = None,
    valid_weights: np.ndarray | None = None,
) -> Any:
    """A LightGBM multiclass booster on ``rows`` (N, F) and canonical ``labels`` (N,);
    with ``valid`` rows it keeps the round with the lowest validation log loss. Rows are
    weighted by ``weights`` (N,) / ``valid_weights``, by default inverse class frequency."""
    lightgbm = import_lightgbm()
    names = [n.replace(" ", "_") for n in config.resolved_features()]
    if weights is None:
        weights = class_balanced_weights(labels)
    train_set = lightgbm.Dataset(rows, labels, weight=weights, feature_name=names)
    valid_sets, callbacks = [], []
    if valid is not None and valid[1].size:
        if valid_weights is None:
            valid_weights = class_balanced_weights(valid[1])
        valid_sets = [train_set.create_valid(valid[0], valid[1], weight=valid_weights)]
        callbacks.append(lightgbm.early_stopping(config.early_stopping, verbose=False))
    with progress_bar(progress, "rounds") as bar:
        task = bar.add_task("boosting", total=config.rounds)
        callbacks.append(lambda env: bar.advance(task))
        try:
            return lightgbm.train(
                config.lightgbm_params(),
                train_set,
                num_boost_round=config.rounds,
                valid_sets=valid_sets,
                callbacks=callbacks,
            )
        except lightgbm.basic.LightGBMError as exc:
            raise ModelError(f"LightGBM could not fit the pixel model: {exc}") from exc


def validate_pixel_model(model: PixelModel, source: SampleSource) -> dict[str, float]:
    """Validation row (loss = mean log loss over labelled pixels, cloud/shadow median BOA,
    per-class F1) of ``model`` on every sample of ``source``."""
    protocol = CloudSEN12Protocol()
    losses = []
    for position in range(len(source)):
        image, target, _ = source.arrays(position)
        probs = model.predict_proba(image, ModelContext())
        labelled = target != NODATA
        if np.any(labelled):
            truth_p = probs[:, labelled][target[labelled], np.arange(int(labelled.sum()))]
            losses.append(float(-np.log(np.maximum(truth_p, 1e-7)).mean()))
        pred = probs.argmax(0).astype(np.uint8)
        protocol.update("model", pred, target, meta={"id": str(position)})
    return validation_scores(protocol, losses or [float("nan")])


def validation_rows(
    source: SampleSource, config: PixelTrainConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """Feature rows of the validation samples for early stopping (None when unlabelled)."""
    try:
        return collect_rows(source, config)
    except DatasetError:
        return None


def train_pixel_model(
    dataset: CloudDataset,
    *,
    out_dir: str | Path,
    config: PixelTrainConfig | None = None,
    val_dataset: CloudDataset | None = None,
    val_fraction: float = 0.1,
    name: str = "s2clouds-pixel",
    training_data: str | None = None,
    licence: str = "",
    resolution: float = 10.0,
    stride: int = 1,
    notes: Sequence[str] = (),
    progress: bool = True,
) -> PixelTrainResult:
    """Fit a pixel model on ``dataset`` (any reader with canonical masks) and save it in
    ``out_dir`` as ``pixel.lgbm`` + ``pixel.json`` (+ ``metrics.json``).

    Validation runs on ``val_dataset``, else on a seeded ``val_fraction`` hold-out of the
    samples; it also picks the number of boosting rounds (early stopping). ``stride`` > 1
    makes the saved model classify every ``stride``-th pixel and interpolate in between
    (``stride`` squared times faster; validation uses it too).
    """
    config = config or PixelTrainConfig()
    bands = canonical_band_names(config.bands)
    features = config.resolved_features()
    started = time.perf_counter()
    train_source, val_source = train_val_sources(
        dataset, val_dataset, bands, val_fraction=val_fraction, seed=config.seed
    )
    rows, labels = collect_rows(train_source, config, progress=progress)
    val_rows = validation_rows(val_source, replace(config, seed=config.seed + 1))
    booster = fit_booster(rows, labels, config, valid=val_rows, progress=progress)
    spec = pixel_spec(
        name,
        bands,
        features,
        resolution=resolution,
        stride=stride,
        training_data=training_data or f"{dataset.name} ({len(train_source)} samples)",
        licence=licence,
        notes=(
            *notes,
            f"LightGBM: {booster.current_iteration()} rounds, {config.num_leaves} leaves, "
            f"{rows.shape[0]} labelled pixels, seed {config.seed}",
        ),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = PixelModel(booster, spec)
    path = model.save(out / MODEL_FILE)
    scores = validate_pixel_model(model, val_source)
    result = PixelTrainResult(
        path=path,
        scores=scores,
        train_pixels=int(rows.shape[0]),
        rounds=int(booster.current_iteration()),
        seconds=time.perf_counter() - started,
    )
    write_metrics_json(out / METRICS_FILE, result, config)
    return result


def write_metrics_json(path: Path, result: PixelTrainResult, config: PixelTrainConfig) -> None:
    """``metrics.json``: validation scores, pixel and round counts, seconds and the config."""
    payload = {
        "scores": result.scores,
        "train_pixels": result.train_pixels,
        "rounds": result.rounds,
        "seconds": round(result.seconds, 2),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")


def scribble_config(bands: Sequence[str], config: PixelTrainConfig | None) -> PixelTrainConfig:
    """``config`` (default: 100 rounds, context windows up to 31 px: a few strokes on one
    image cannot teach the wider windows) for the canonical names of ``bands``."""
    names = canonical_band_names(tuple(bands))
    config = config or PixelTrainConfig(bands=names, rounds=100)
    features = config.features or default_features(names, max_radius=SCRIBBLE_RADIUS)
    return replace(config, bands=names, features=features)


def scribble_rows(
    image: np.ndarray, scribbles: np.ndarray, config: PixelTrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows (N, F) and labels (N,) of the scribbled pixels (up to
    ``config.max_pixels``, balanced over classes) of ``image`` (C, H, W) reflectance;
    scribbles on no-data pixels are dropped."""
    if scribbles.shape != image.shape[1:]:
        raise DatasetError(
            f"scribbles {scribbles.shape} and image {image.shape[1:]} differ in size; "
            "draw the scribbles on the image's grid"
        )
    usable = np.where(np.all(np.isfinite(image), axis=0), scribbles, NODATA).astype(np.uint8)
    rng = np.random.default_rng(config.seed)
    return feature_rows(
        image.astype(np.float32, copy=False),
        usable,
        config.bands,
        config.resolved_features(),
        config.max_pixels,
        rng,
    )


def fit_rows(
    rows: np.ndarray,
    labels: np.ndarray,
    config: PixelTrainConfig,
    *,
    name: str = "scribbles",
    resolution: float = 10.0,
) -> PixelModel:
    """An in-memory pixel model fitted on scribbled feature ``rows`` and ``labels``."""
    if labels.size == 0:
        raise DatasetError("no scribbled pixels (all 255); label some pixels first")
    booster = fit_booster(rows, labels, config)
    spec = pixel_spec(
        name,
        config.bands,
        config.resolved_features(),
        resolution=resolution,
        training_data="scribbles",
    )
    return PixelModel(booster, spec)


def fit_scribbles(
    image: np.ndarray,
    scribbles: np.ndarray,
    bands: Sequence[str],
    *,
    config: PixelTrainConfig | None = None,
    name: str = "scribbles",
    resolution: float = 10.0,
) -> PixelModel:
    """An in-memory pixel model fitted on the scribbled pixels of one image, ready to
    predict the rest of it (interactive annotation, as IRIS does).

    ``image``: (C, H, W) float32 reflectance in ``bands`` order at ``resolution`` metres;
    ``scribbles``: (H, W) uint8 canonical classes, 255 where unlabelled. Trains in about a
    second.
    """
    config = scribble_config(bands, config)
    rows, labels = scribble_rows(image, scribbles, config)
    return fit_rows(rows, labels, config, name=name, resolution=resolution)
