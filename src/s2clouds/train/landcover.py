"""SEN12MS land cover: baselines trained on S1, S2 or S1+S2 patches, scored as in the paper.

Two tasks (Schmitt et al. 2019, Section 5):

``single``  one label per patch, the majority class of its valid pixels (as the paper's
            ResNet scene classification); scored per patch with OA, AA and kappa. With
            ``tile`` (the paper: 64) each patch is first cut into tiles of that many pixels,
            and each tile is a patch.
``dense``   one label per pixel (as the paper's DenseNet); scored per pixel.

Two baselines: ``lightgbm`` (gradient-boosted trees; ``single``: on per-patch band statistics,
``dense``: on each pixel's band values next to its patch's statistics) and ``resnet18`` /
``resnet50`` (torchvision, trained from scratch as in the paper; ``dense``: the ResNet body,
a 1 x 1 convolution and bilinear upsampling to the patch size).

Inputs (``inputs``): ``s2`` (the paper's ten bands, reflectance), ``s1`` (VV, VH in dB) or
``s1s2`` (both stacked, S2 first). Labels are a land-cover layer of the ``lc`` patch
(default LCCS land use, the paper's); scoring merges classes as the paper does
(:data:`s2clouds.benchmark.protocols.SEN12MS_PAPER_MERGE`) for that layer.

A trained model is a folder: ``landcover.json`` (what it is: model, task, inputs, layer,
classes, input normalisation) and ``landcover.lgbm`` (LightGBM text) or ``landcover.pt`` (a
torch state dict, loaded with ``weights_only=True``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.benchmark.protocols import SEN12MS_PAPER_MERGE, Sen12msLandCoverProtocol
from s2clouds.datasets.base import CloudDataset
from s2clouds.errors import DatasetError, ModelError
from s2clouds.io.write import atomic_path
from s2clouds.labels.landcover import LANDCOVER_NODATA, get_landcover_layer

#: the ten S2 bands of the paper's baselines (Section 5)
PAPER_S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
INPUTS = ("s2", "s1", "s1s2")
TASKS = ("single", "dense")
MODELS = ("lightgbm", "resnet18", "resnet50")
SPEC_FILE = "landcover.json"
LGBM_FILE = "landcover.lgbm"
TORCH_FILE = "landcover.pt"
#: per-channel statistics of a patch used as LightGBM features
STATISTICS = ("mean", "std", "p10", "p50", "p90")
#: pixels drawn per patch to train the dense LightGBM model
DENSE_PIXELS_PER_PATCH = 512


@dataclass
class LandCoverConfig:
    """What to train: ``model`` (:data:`MODELS`), ``task`` (:data:`TASKS`), ``inputs``
    (:data:`INPUTS`), ``layer`` (land-cover layer name), ``epochs``, ``batch_size``, ``lr``
    (ResNet, Adam), ``rounds`` (LightGBM boosting rounds), ``seed``."""

    model: str = "lightgbm"
    task: str = "single"
    inputs: str = "s2"
    layer: str = "lccs_lu"
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    rounds: int = 100
    seed: int = 0
    #: cut patches into ``tile`` x ``tile`` pixel tiles (None: whole patches)
    tile: int | None = None

    def check(self) -> None:
        if self.tile is not None and self.tile < 1:
            raise ModelError(f"tile must be a positive number of pixels, not {self.tile}")
        for value, allowed, what in (
            (self.model, MODELS, "model"),
            (self.task, TASKS, "task"),
            (self.inputs, INPUTS, "input"),
        ):
            if value not in allowed:
                raise ModelError(f"unknown land-cover {what} {value!r}; use {', '.join(allowed)}")
        get_landcover_layer(self.layer)


@dataclass
class LandCoverSpec:
    """The saved description of a trained model: its config, class codes (index -> code) and
    per-channel mean/std used to normalise the input."""

    config: LandCoverConfig
    classes: list[int]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- inputs and labels
def reader_options(config: LandCoverConfig) -> dict[str, Any]:
    """SEN12MS reader options the config needs (S1 read only when used, the label layer)."""
    return {"with_s1": config.inputs != "s2", "layer": config.layer, "canonical": False}


def patch_input(sample: dict[str, Any], inputs: str) -> np.ndarray:
    """(C, H, W) float32 input of one SEN12MS sample: the paper's S2 bands (reflectance),
    S1 VV/VH (dB), or both; non-finite values become 0."""
    parts = []
    if inputs in ("s2", "s1s2"):
        bands = list(sample["bands"])
        missing = [b for b in PAPER_S2_BANDS if b not in bands]
        if missing:
            raise DatasetError(
                f"the samples lack the S2 bands {', '.join(missing)}; open SEN12MS with all bands"
            )
        parts.append(sample["image"][[bands.index(b) for b in PAPER_S2_BANDS]])
    if inputs in ("s1", "s1s2"):
        if sample.get("s1") is None:
            raise DatasetError("the samples carry no S1 patch; open SEN12MS with with_s1=True")
        parts.append(sample["s1"])
    stacked = np.concatenate(parts).astype(np.float32)
    return np.nan_to_num(stacked, nan=0.0, posinf=0.0, neginf=0.0)


def majority_label(mask: np.ndarray, valid: np.ndarray) -> int:
    """The most frequent land-cover code of the valid pixels (the smallest code on a tie),
    or 255 (no data) when none is valid."""
    values = np.asarray(mask)[np.asarray(valid, dtype=bool)]
    if values.size == 0:
        return LANDCOVER_NODATA
    counts = np.bincount(values.astype(np.int64), minlength=256)
    return int(np.argmax(counts))


def patch_statistics(x: np.ndarray) -> np.ndarray:
    """(C * 5,) float32: per channel of a (C, H, W) patch its mean, std, 10th, 50th and 90th
    percentile (:data:`STATISTICS`, channel-major)."""
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    p10, p50, p90 = np.percentile(flat, [10, 50, 90], axis=1)
    return np.stack([flat.mean(1), flat.std(1), p10, p50, p90], axis=1).ravel().astype(np.float32)


#: sample entries cut into tiles, each (..., H, W)
TILED_KEYS = ("image", "s1", "mask", "valid")


def tiles(sample: dict[str, Any], size: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("", sample)`` without ``size``; else ``("_t<row>_<col>", tile)`` for every whole
    ``size`` x ``size`` tile of the sample (the right and bottom rest left out)."""
    if size is None:
        yield "", sample
        return
    height, width = np.asarray(sample["mask"]).shape[-2:]
    if size > min(height, width):
        raise DatasetError(f"tiles of {size} px do not fit patches of {height} x {width} px")
    for top in range(0, height - size + 1, size):
        for left in range(0, width - size + 1, size):
            window = (slice(top, top + size), slice(left, left + size))
            cut = {
                k: (np.asarray(v)[(..., *window)] if k in TILED_KEYS and v is not None else v)
                for k, v in sample.items()
            }
            yield f"_t{top // size}_{left // size}", cut


def _samples(
    dataset: CloudDataset, limit: int | None = None, tile: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(image id, sample or tile)`` of the first ``limit`` samples."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in range(count):
        sample = dataset[index]
        for suffix, part in tiles(sample, tile):
            yield _image_id(sample, index) + suffix, part


def _image_id(sample: dict[str, Any], index: int) -> str:
    meta = sample.get("meta") or {}
    if {"roi", "scene", "patch"} <= meta.keys():
        return f"{meta['roi']}_{meta['scene']}_p{meta['patch']}"
    return str(index)


# --------------------------------------------------------------------------- the model
class LandCoverModel:
    """A trained land-cover baseline: ``predict(sample)`` gives the patch's class code
    (``single``) or an (H, W) uint8 map of codes (``dense``)."""

    def __init__(self, spec: LandCoverSpec, estimator: Any) -> None:
        self.spec = spec
        self.config = spec.config
        self.estimator = estimator

    @property
    def name(self) -> str:
        return f"{self.config.model}-{self.config.task}-{self.config.inputs}"

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.spec.mean, np.float32)[:, None, None]
        std = np.asarray(self.spec.std, np.float32)[:, None, None]
        return (x - mean) / std

    def predict_input(self, x: np.ndarray) -> np.ndarray:
        """Class indices: ``()`` for ``single``, ``(H, W)`` for ``dense``, of a (C, H, W) input."""
        if self.config.model == "lightgbm":
            features = _lightgbm_features(x, self.config.task)
            if len(self.spec.classes) == 1:
                scores = np.ones((len(features), 1))
            else:
                scores = np.asarray(self.estimator.predict(features)).reshape(len(features), -1)
            indices = scores.argmax(axis=1)
            return indices[0] if self.config.task == "single" else indices.reshape(x.shape[1:])
        import torch

        with torch.no_grad():
            batch = torch.from_numpy(self._normalise(x)[None])
            logits = self.estimator(batch)[0].numpy()
        return logits.argmax(axis=0)

    def predict(self, sample: dict[str, Any]) -> np.ndarray:
        """Class codes (uint8): ``(1, 1)`` for ``single``, ``(H, W)`` for ``dense``."""
        indices = self.predict_input(patch_input(sample, self.config.inputs))
        codes = np.asarray(self.spec.classes, dtype=np.uint8)[indices]
        return codes.reshape(1, 1) if self.config.task == "single" else codes

    def save(self, folder: Path) -> Path:
        """Write the spec and the estimator into ``folder`` (atomically per file)."""
        folder.mkdir(parents=True, exist_ok=True)
        spec = asdict(self.spec)
        with atomic_path(folder / SPEC_FILE) as tmp:
            tmp.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        if self.config.model == "lightgbm":
            with atomic_path(folder / LGBM_FILE) as tmp:
                text = "" if self.estimator is None else self.estimator.model_to_string()
                tmp.write_text(text, encoding="utf-8")
        else:
            import torch

            with atomic_path(folder / TORCH_FILE) as tmp:
                torch.save(self.estimator.state_dict(), tmp)
        return folder

    @classmethod
    def load(cls, folder: Path) -> LandCoverModel:
        """A model saved by :meth:`save`; :class:`ModelError` when the folder is not one."""
        path = Path(folder) / SPEC_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            spec = LandCoverSpec(**{**raw, "config": LandCoverConfig(**raw["config"])})
            spec.config.check()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelError(
                f"{folder} is not a land-cover model ({exc}); train one with "
                "'s2clouds landcover train'"
            ) from exc
        if spec.config.model == "lightgbm":
            text = (Path(folder) / LGBM_FILE).read_text(encoding="utf-8")
            if len(spec.classes) == 1:
                return cls(spec, None)
            from s2clouds.models.pixel import import_lightgbm

            return cls(spec, import_lightgbm().Booster(model_str=text))
        import torch

        network = _resnet(spec.config, len(spec.mean), len(spec.classes))
        state = torch.load(Path(folder) / TORCH_FILE, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        network.eval()
        return cls(spec, network)


# --------------------------------------------------------------------------- LightGBM
def _lightgbm_features(x: np.ndarray, task: str) -> np.ndarray:
    """``single``: (1, C * 5) patch statistics; ``dense``: (H * W, C + C * 5), each pixel's
    values next to its patch's statistics."""
    stats = patch_statistics(x)
    if task == "single":
        return stats[None]
    pixels = x.reshape(x.shape[0], -1).T
    return np.concatenate([pixels, np.broadcast_to(stats, (len(pixels), len(stats)))], axis=1)


def _fit_lightgbm(
    inputs: list[np.ndarray], labels: list[np.ndarray], config: LandCoverConfig
) -> tuple[list[int], Any]:
    """Class codes and a fitted booster (None with a single class) from (C, H, W) inputs and
    their labels (``()`` or ``(H, W)`` codes, 255 ignored)."""
    rng = np.random.default_rng(config.seed)
    rows, targets = [], []
    for x, y in zip(inputs, labels, strict=True):
        features = _lightgbm_features(x, config.task)
        flat = np.asarray(y).ravel()
        keep = np.flatnonzero(flat != LANDCOVER_NODATA)
        if config.task == "dense" and len(keep) > DENSE_PIXELS_PER_PATCH:
            keep = rng.choice(keep, DENSE_PIXELS_PER_PATCH, replace=False)
        rows.append(features[keep])
        targets.append(flat[keep])
    target = np.concatenate(targets)
    if target.size == 0:
        raise DatasetError("no patch has a valid land-cover label; check the lc files")
    classes = sorted(int(c) for c in np.unique(target))
    if len(classes) == 1:
        return classes, None
    from s2clouds.models.pixel import import_lightgbm

    lightgbm = import_lightgbm()
    index = {c: i for i, c in enumerate(classes)}
    train_set = lightgbm.Dataset(
        np.concatenate(rows), np.array([index[int(t)] for t in target]), params={"verbose": -1}
    )
    params = {
        "objective": "multiclass",
        "num_class": len(classes),
        "learning_rate": 0.1,
        "min_data_in_leaf": 2,
        "min_data_in_bin": 1,
        "seed": config.seed,
        "num_threads": 2,
        "verbose": -1,
    }
    return classes, lightgbm.train(params, train_set, num_boost_round=config.rounds)


# --------------------------------------------------------------------------- ResNet
def _resnet(config: LandCoverConfig, channels: int, n_classes: int) -> Any:
    """A torchvision ResNet with ``channels`` inputs: a classifier (``single``) or a dense
    head (``dense``: body, 1 x 1 convolution, bilinear upsampling to the input size)."""
    import torch
    from torch import nn
    from torchvision import models

    network = getattr(models, config.model)(weights=None, num_classes=n_classes)
    network.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if config.task == "single":
        return network

    class DenseResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*list(network.children())[:-2])
            self.head = nn.Conv2d(network.fc.in_features, n_classes, kernel_size=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.head(self.body(x))
            return nn.functional.interpolate(
                logits, size=x.shape[-2:], mode="bilinear", align_corners=False
            )

    return DenseResNet()


def _fit_resnet(
    inputs: list[np.ndarray], labels: list[np.ndarray], config: LandCoverConfig
) -> tuple[list[int], list[float], list[float], Any]:
    """Class codes, input mean/std and a trained ResNet (Adam, cross-entropy, 255 ignored)."""
    import torch

    torch.manual_seed(config.seed)
    stack = np.stack(inputs)  # (N, C, H, W)
    mean = stack.mean(axis=(0, 2, 3))
    std = stack.std(axis=(0, 2, 3)) + 1e-6
    target = np.stack([np.asarray(y) for y in labels])
    classes = sorted(int(c) for c in np.unique(target) if c != LANDCOVER_NODATA)
    if not classes:
        raise DatasetError("no patch has a valid land-cover label; check the lc files")
    lut = np.full(256, -100, dtype=np.int64)  # -100: cross-entropy's ignore index
    lut[classes] = np.arange(len(classes))
    x = torch.from_numpy(((stack - mean[:, None, None]) / std[:, None, None]).astype(np.float32))
    y = torch.from_numpy(lut[target.astype(np.int64)])
    network = _resnet(config, x.shape[1], len(classes))
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    generator = torch.Generator().manual_seed(config.seed)
    network.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2 and len(x) > 1:
                continue  # batch norm needs two samples
            optimiser.zero_grad()
            loss = loss_fn(network(x[batch]), y[batch])
            if torch.isfinite(loss):
                loss.backward()
                optimiser.step()
    network.eval()
    return classes, mean.tolist(), std.tolist(), network


# --------------------------------------------------------------------------- train and score
def sample_label(sample: dict[str, Any], task: str) -> np.ndarray:
    """The reference of one sample: ``()`` majority code (``single``) or (H, W) codes with 255
    where not valid (``dense``), uint8."""
    mask, valid = np.asarray(sample["mask"]), np.asarray(sample["valid"], dtype=bool)
    if task == "single":
        return np.asarray(majority_label(mask, valid), dtype=np.uint8)
    return np.where(valid, mask, LANDCOVER_NODATA).astype(np.uint8)


def train_landcover(
    dataset: CloudDataset, config: LandCoverConfig, *, limit: int | None = None
) -> LandCoverModel:
    """Fit the configured baseline on every sample of a SEN12MS ``dataset``."""
    config.check()
    inputs, labels = [], []
    for _, sample in _samples(dataset, limit, config.tile):
        inputs.append(patch_input(sample, config.inputs))
        labels.append(sample_label(sample, config.task))
    if not inputs:
        raise DatasetError("the dataset has no samples to train on")
    if config.model == "lightgbm":
        channels = inputs[0].shape[0]
        classes, booster = _fit_lightgbm(inputs, labels, config)
        spec = LandCoverSpec(config, classes, [0.0] * channels, [1.0] * channels)
        return LandCoverModel(spec, booster)
    classes, mean, std, network = _fit_resnet(inputs, labels, config)
    return LandCoverModel(LandCoverSpec(config, classes, mean, std), network)


def landcover_protocol(layer: str) -> Sen12msLandCoverProtocol:
    """The SEN12MS protocol over ``layer``'s classes, with the paper's merges for LCCS land use."""
    chosen = get_landcover_layer(layer)
    merge = SEN12MS_PAPER_MERGE if chosen.name == "lccs_lu" else None
    return Sen12msLandCoverProtocol(
        classes={c: n.lower() for c, n in chosen.classes.items()}, merge=merge
    )


def score_landcover(
    models: Sequence[tuple[str, LandCoverModel]],
    dataset: CloudDataset,
    *,
    limit: int | None = None,
) -> Sen12msLandCoverProtocol:
    """Score named models on the same samples; one image per patch (``single``: a 1 x 1
    image of the patch's class against its majority label)."""
    if not models:
        raise ModelError("give at least one land-cover model to score")
    layers = {m.config.layer for _, m in models}
    if len(layers) != 1:
        raise ModelError(f"the models predict different layers {sorted(layers)}; score apart")
    tile_sizes = {m.config.tile for _, m in models}
    if len(tile_sizes) != 1:
        raise ModelError(f"the models use different tiles {tile_sizes}; score them apart")
    protocol = landcover_protocol(layers.pop())
    for image_id, sample in _samples(dataset, limit, tile_sizes.pop()):
        meta = {"id": image_id}
        for name, model in models:
            truth = sample_label(sample, model.config.task)
            pred = model.predict(sample)
            protocol.update(name, pred, truth.reshape(pred.shape), None, meta)
    return protocol
