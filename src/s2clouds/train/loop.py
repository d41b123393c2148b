"""The training loop: seeded, resumable, validated with the benchmark metrics every epoch.

A run writes into ``out_dir``:

``last.pt``      model, optimiser, scheduler, epoch, RNG states and history (for ``resume``)
``best.pt``      the network with the best validation score and its :class:`WeightSpec`
``metrics.csv``  one row per epoch: losses, cloud and shadow median BOA, per-class F1
``curve.png``    the training curves
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2clouds.bands import RGBN_BANDS, canonical_band_names
from s2clouds.benchmark.protocols import CloudSEN12Protocol
from s2clouds.datasets.base import CloudDataset
from s2clouds.errors import ModelError, OutputError
from s2clouds.io.write import atomic_path
from s2clouds.models.weights import WeightSpec, pad_to_multiple
from s2clouds.resources import cpu_cores
from s2clouds.train.architectures import (
    build_model,
    get_architecture,
    read_trained,
    save_trained,
)
from s2clouds.train.augment import Augmentation
from s2clouds.train.data import (
    SampleSource,
    band_statistics,
    class_counts,
    train_val_sources,
)
from s2clouds.train.losses import CrossEntropyDiceLoss, class_weights_from_counts
from s2clouds.train.scoring import F1_COLUMNS, progress_bar, validation_scores

LAST, BEST, METRICS, CURVE = "last.pt", "best.pt", "metrics.csv", "curve.png"
#: what ``last.pt`` must hold to resume a run (see :meth:`RunState.restore`)
RESUME_KEYS = (
    "spec",
    "model_state",
    "optimizer_state",
    "scheduler_state",
    "epoch",
    "best_score",
    "history",
    "rng",
    "config",
)
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "boa_cloud",
    "boa_shadow",
    *F1_COLUMNS,
    "f1_macro",
    "score",
    "lr",
    "seconds",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run of the network trainer (stored in ``last.pt``; a resumed
    run must match it in ``architecture`` and ``bands``): the one configuration object of
    :func:`train`, as :class:`~s2clouds.train.pixel.PixelTrainConfig` is of the pixel trainer.

    ``bands`` are canonicalised (any spelling); ``augmentation.crop`` is the patch edge (px);
    ``val_fraction``/``max_val_samples`` shape the hold-out used without a validation set.
    """

    architecture: str = "tiny-unet"
    bands: tuple[str, ...] = RGBN_BANDS
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    weight_decay: float = 1e-4
    dice_weight: float = 1.0
    val_fraction: float = 0.1
    max_val_samples: int | None = None
    augmentation: Augmentation = field(default_factory=Augmentation)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", canonical_band_names(tuple(self.bands)))

    def check(self) -> None:
        get_architecture(self.architecture)
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ModelError("epochs and batch size must be at least 1 and lr positive")


# ---------------------------------------------------------------------------- batches
def network_input(image: np.ndarray, spec: WeightSpec) -> torch.Tensor:
    """(1, C, H', W') float32 tensor: normalised (NaN -> 0), padded to ``size_multiple``."""
    padded = pad_to_multiple(spec.normalise(image), spec.size_multiple)
    return torch.from_numpy(np.ascontiguousarray(padded)).unsqueeze(0)


def training_batch(
    source: SampleSource,
    positions: Sequence[int],
    spec: WeightSpec,
    augmentation: Augmentation,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented inputs (N, C, h, w) float32 and targets (N, h, w) int64 (255 = ignore)."""
    images, targets = [], []
    for position in positions:
        image, target, _ = source.arrays(position)
        image, target = augmentation(image, target, source.bands, rng)
        images.append(pad_to_multiple(spec.normalise(image), spec.size_multiple))
        targets.append(pad_to_multiple(target, spec.size_multiple))
    shapes = {t.shape for t in targets}
    if len(shapes) > 1:
        raise ModelError(
            f"training samples come in different sizes {sorted(shapes)}; set a crop size "
            "(e.g. crop=256) so that they stack into batches"
        )
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets)).long()


# ---------------------------------------------------------------------------- validation
@torch.no_grad()
def validate(
    model: nn.Module, source: SampleSource, spec: WeightSpec, loss_fn: nn.Module
) -> dict[str, float]:
    """Loss, cloud and shadow median BOA (CloudSEN12 protocol) and per-class F1 (pooled)
    of ``model`` on every sample of ``source``, each run whole."""
    model.eval()
    protocol = CloudSEN12Protocol()
    losses = []
    for position in range(len(source)):
        image, target, _ = source.arrays(position)
        h, w = target.shape
        logits = model(network_input(image, spec))[:, :, :h, :w]
        truth = torch.from_numpy(target).long().unsqueeze(0)
        losses.append(float(loss_fn(logits, truth)))
        pred = logits[0].argmax(0).numpy().astype(np.uint8)
        protocol.update("model", pred, target, meta={"id": str(position)})
    return validation_scores(protocol, losses)


# ---------------------------------------------------------------------------- outputs
def write_metrics(path: Path, history: Sequence[dict[str, float]]) -> None:
    """``metrics.csv`` with one row per finished epoch (rewritten whole each epoch)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})


def plot_curves(path: Path, history: Sequence[dict[str, float]]) -> None:
    """Training curves PNG: losses (left), validation BOA and macro F1 (right) per epoch."""
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5))
    loss_ax, score_ax = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.2)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [row[key] for row in history], marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss (CE + Dice)", title="loss")
    for key, label in (
        ("boa_cloud", "cloud BOA"),
        ("boa_shadow", "shadow BOA"),
        ("f1_macro", "macro F1"),
    ):
        score_ax.plot(epochs, [row[key] for row in history], marker="o", label=label)
    score_ax.set(xlabel="epoch", ylim=(0, 1), title="validation")
    for ax in (loss_ax, score_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    from s2clouds.viz import save_figure

    save_figure(fig, path, dpi=100)


# ---------------------------------------------------------------------------- state
@dataclass
class RunState:
    """What ``last.pt`` holds besides the network: where the run is and how it got there."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    spec: WeightSpec
    rng: np.random.Generator
    epoch: int = 0
    best_score: float = -math.inf
    history: list[dict[str, float]] = field(default_factory=list)

    def save(self, path: Path, config: TrainConfig) -> None:
        save_trained(
            path,
            self.model,
            self.spec,
            {
                "optimizer_state": self.optimizer.state_dict(),
                "scheduler_state": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "best_score": self.best_score,
                "history": self.history,
                "rng": {
                    "numpy": self.rng.bit_generator.state,
                    "torch": torch.get_rng_state(),
                },
                "config": config_dict(config),
            },
        )

    def restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model_state"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        self.scheduler.load_state_dict(checkpoint["scheduler_state"])
        self.epoch = int(checkpoint["epoch"])
        self.best_score = float(checkpoint["best_score"])
        self.history = list(checkpoint["history"])
        self.rng.bit_generator.state = checkpoint["rng"]["numpy"]
        torch.set_rng_state(checkpoint["rng"]["torch"])


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain JSON-like values (safe for ``torch.load(weights_only=True)``)."""
    data = asdict(config)
    data["bands"] = list(config.bands)
    return data


def check_resumable(checkpoint: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse to resume a run of another architecture or band set."""
    saved = checkpoint.get("config", {})
    for key in ("architecture", "bands"):
        theirs, ours = saved.get(key), config_dict(config)[key]
        if theirs != ours:
            raise OutputError(
                f"{path} belongs to a run with {key} {theirs}, not {ours}; choose another "
                "output folder or start afresh with resume=False"
            )


def new_spec(
    config: TrainConfig,
    source: SampleSource,
    *,
    name: str | None,
    training_data: str,
    licence: str,
    resolution: float,
) -> WeightSpec:
    """The weight spec of a new run: normalisation from the training data, and provenance."""
    arch = get_architecture(config.architecture)
    mean, std = band_statistics(source.dataset, config.bands, source.indices, seed=config.seed)
    return WeightSpec(
        name=name or f"{config.architecture}-{len(config.bands)}b",
        architecture=config.architecture,
        bands=config.bands,
        mean=mean,
        std=std,
        resolution=resolution,
        tile_size=arch.tile_size,
        size_multiple=arch.size_multiple,
        halo=arch.halo,
        training_data=training_data,
        licence=licence,
        notes=(
            f"s2clouds train: {config.epochs} epochs, batch {config.batch_size}, "
            f"lr {config.lr:g}, seed {config.seed}",
        ),
    )


def build_state(config: TrainConfig, spec: WeightSpec) -> RunState:
    """A fresh (seeded) network, AdamW optimiser and cosine schedule for ``config``."""
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, len(config.bands))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return RunState(model, optimizer, scheduler, spec, np.random.default_rng(config.seed))


def data_sources(
    dataset: CloudDataset, val_dataset: CloudDataset | None, config: TrainConfig
) -> tuple[SampleSource, SampleSource]:
    """Training and validation views of a run (see :func:`train_val_sources`)."""
    return train_val_sources(
        dataset,
        val_dataset,
        config.bands,
        val_fraction=config.val_fraction,
        seed=config.seed,
        max_val_samples=config.max_val_samples,
    )


# ---------------------------------------------------------------------------- the loop
def train_epoch(
    state: RunState,
    source: SampleSource,
    config: TrainConfig,
    loss_fn: nn.Module,
    progress: Any,
    task: Any,
) -> float:
    """One pass over ``source`` in a seeded random order; returns the mean batch loss."""
    state.model.train()
    order = state.rng.permutation(len(source))
    losses = []
    for start in range(0, len(order), config.batch_size):
        positions = order[start : start + config.batch_size].tolist()
        inputs, targets = training_batch(
            source, positions, state.spec, config.augmentation, state.rng
        )
        loss = loss_fn(state.model(inputs), targets)
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        losses.append(loss.item())
        progress.update(
            task, advance=1, description=f"epoch {state.epoch + 1} loss {losses[-1]:.3f}"
        )
    state.scheduler.step()
    return float(np.mean(losses))


def train(
    dataset: CloudDataset,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path,
    val_dataset: CloudDataset | None = None,
    resume: bool = True,
    num_threads: int | None = None,
    progress: bool = True,
    name: str | None = None,
    training_data: str | None = None,
    licence: str = "",
    resolution: float = 10.0,
    curve_every: int = 1,
) -> Path:
    """Train ``config.architecture`` on ``dataset`` (any reader opened with ``canonical=True``).

    ``config`` (:class:`TrainConfig`, default: its defaults) says what to train: the
    ``bands`` are picked by name from each sample; ``mask_canonical`` is the target with 255
    (and invalid pixels) ignored. Patches of ``config.augmentation.crop`` px (inside the
    labelled area) are augmented (default: flips, rotations, brightness and haze jitter).
    Validation (every epoch) runs on ``val_dataset``, else on a seeded
    ``config.val_fraction`` hold-out. With ``resume`` a run continues from ``out_dir/last.pt``; a finished run
    returns at once. Threads: ``num_threads`` (default: usable cores). ``curve.png`` is
    redrawn every ``curve_every`` epochs and at the end.

    Returns the path of ``best.pt`` (highest :func:`selection_score`), which
    ``s2clouds export`` turns into an ONNX model.
    """
    config = config or TrainConfig()
    config.check()
    torch.set_num_threads(num_threads or cpu_cores())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_source, val_source = data_sources(dataset, val_dataset, config)
    state = start_or_resume(
        config,
        train_source,
        out,
        resume,
        name=name,
        training_data=training_data or f"{dataset.name} ({len(train_source)} samples)",
        licence=licence,
        resolution=resolution,
    )
    counts = class_counts(dataset)
    loss_fn = CrossEntropyDiceLoss(
        class_weights_from_counts(counts).tolist(), dice_weight=config.dice_weight
    )
    n_batches = math.ceil(len(train_source) / config.batch_size)
    with progress_bar(progress) as bar:
        task = bar.add_task("training", total=n_batches * (config.epochs - state.epoch))
        while state.epoch < config.epochs:
            run_epoch(state, train_source, val_source, config, loss_fn, out, bar, task)
            if state.epoch % curve_every == 0 or state.epoch == config.epochs:
                plot_curves(out / CURVE, state.history)
    return out / BEST


def start_or_resume(
    config: TrainConfig,
    source: SampleSource,
    out: Path,
    resume: bool,
    **spec_options: Any,
) -> RunState:
    """The run state from ``out/last.pt`` when resuming, else a fresh one."""
    last = out / LAST
    if resume and last.is_file():
        fix = "delete it to start again, or start afresh with resume=False"
        checkpoint = read_trained(last, fix, RESUME_KEYS)
        check_resumable(checkpoint, config, last)
        state = build_state(config, WeightSpec.from_dict(checkpoint["spec"]))
        state.restore(checkpoint)
        return state
    return build_state(config, new_spec(config, source, **spec_options))


def run_epoch(
    state: RunState,
    train_source: SampleSource,
    val_source: SampleSource,
    config: TrainConfig,
    loss_fn: nn.Module,
    out: Path,
    bar: Any,
    task: Any,
) -> None:
    """Train one epoch, validate, and write the metrics and checkpoints."""
    started = time.perf_counter()
    lr = state.optimizer.param_groups[0]["lr"]
    train_loss = train_epoch(state, train_source, config, loss_fn, bar, task)
    scores = validate(state.model, val_source, state.spec, loss_fn)
    state.epoch += 1
    row = {
        "epoch": state.epoch,
        "train_loss": train_loss,
        **scores,
        "lr": lr,
        "seconds": time.perf_counter() - started,
    }
    state.history.append(row)
    if state.epoch == 1 or scores["score"] > state.best_score:
        state.best_score = scores["score"]
        save_trained(out / BEST, state.model, state.spec, {"epoch": state.epoch, "metrics": row})
    state.save(out / LAST, config)
    write_metrics(out / METRICS, state.history)
