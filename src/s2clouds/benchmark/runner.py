"""Score maskers on a dataset: models of this package, peers, and masks stored in the dataset.

A masker name is either a registered model (``physical``, ``s2cloudless``, ``ukis-csmask``;
see ``s2clouds.models.registry``) run on each sample's image, or ``layer:<NAME>`` for a mask
the dataset itself stores (CloudSEN12's ``LABEL_`` layers: ``layer:fmask``, ``layer:QA60``,
``layer:sen2cor``, ``layer:kappamask_L1C``, ...), translated to the canonical scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.bands import band_indices
from s2clouds.benchmark.protocols import Protocol, get_protocol, tasks_for_scheme
from s2clouds.datasets.base import CloudDataset
from s2clouds.errors import ModelError
from s2clouds.labels import NODATA, to_canonical

#: dataset kind -> protocol name used by default
DEFAULT_PROTOCOL = {
    "cloudsen12": "cloudsen12",
    "chips": "cloudsen12",
    "cmc": "cmc",
    "temporal": "spatiotemporal",
    "sen12ms": "sen12ms",
}
LAYER_PREFIX = "layer:"


@dataclass(frozen=True)
class Masker:
    """A masker to score: a registered model or a stored layer."""

    name: str

    @property
    def layer(self) -> str | None:
        return self.name[len(LAYER_PREFIX) :] if self.name.startswith(LAYER_PREFIX) else None

    def tasks(self) -> tuple[str, ...]:
        """CloudSEN12 tasks this masker can be scored on (no shadow task without a shadow class)."""
        if self.layer is not None:
            scheme = layer_scheme(self.layer)
            return tasks_for_scheme(scheme) if scheme else ("cloud", "shadow", "valid")
        from s2clouds.models.registry import get_model_info

        return (
            ("cloud", "shadow", "valid")
            if get_model_info(self.name).predicts_shadow
            else ("cloud",)
        )


def layer_key(name: str) -> str:
    """CloudSEN12 layer key (``LABEL_fmask``) for a user's spelling (``fmask``)."""
    from s2clouds.datasets.cloudsen12 import LAYERS

    if name in LAYERS:
        return name
    matches = [key for key, spec in LAYERS.items() if spec.name.lower() == name.lower()]
    if len(matches) != 1:
        raise ModelError(
            f"unknown stored layer {name!r}; use e.g. layer:fmask, layer:QA60, layer:sen2cor"
        )
    return matches[0]


def layer_scheme(name: str) -> str | None:
    """Label scheme of a stored CloudSEN12 layer, None when it is not a mask."""
    from s2clouds.datasets.cloudsen12 import LAYERS

    return LAYERS[layer_key(name)].scheme


class _ModelCache:
    """Models built once per band set."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, tuple[str, ...]], Any] = {}

    def get(self, name: str, bands: Sequence[str]) -> Any:
        from s2clouds.models.registry import get_model

        key = (name, tuple(bands))
        if key not in self._models:
            self._models[key] = get_model(name, bands)
        return self._models[key]


def _predict_image(
    model: Any, image: np.ndarray, bands: Sequence[str], context: dict[str, Any]
) -> np.ndarray:
    """Canonical mask (H, W) of one (C, H, W) image (or (T, H, W) of a (T, C, H, W) series)."""
    from s2clouds.inference.predict import predict_array

    if image.ndim == 4:
        return np.stack([_predict_image(model, frame, bands, context) for frame in image])
    selected = image[band_indices(bands, model.bands)]
    probs = predict_array(model, selected, context)
    mask = np.argmax(probs, axis=0).astype(np.uint8)
    mask[~np.all(np.isfinite(selected), axis=0)] = NODATA
    return mask


def masker_prediction(masker: Masker, sample: dict[str, Any], models: _ModelCache) -> np.ndarray:
    """The canonical mask a masker gives for one sample."""
    if masker.layer is not None:
        layers = sample.get("layers") or {}
        key = layer_key(masker.layer)
        if key not in layers:
            raise ModelError(
                f"the dataset sample has no layer {masker.layer!r}; available: {', '.join(layers) or 'none'}"
            )
        scheme = layer_scheme(masker.layer)
        if scheme is None:
            raise ModelError(f"layer {masker.layer!r} is not a cloud mask")
        return to_canonical(layers[key], scheme, unknown="nodata")
    meta = sample.get("meta", {})
    context = {"resolution": float(meta.get("resolution") or 10.0), "level": meta.get("level")}
    for key in ("sun_zenith", "sun_azimuth"):
        if meta.get(key) is not None:
            context[key] = float(meta[key])
    model = models.get(masker.name, sample["bands"])
    return _predict_image(model, sample["image"], sample["bands"], context)


def run_benchmark(
    dataset: CloudDataset,
    maskers: Sequence[str],
    *,
    protocol: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> Protocol:
    """Score every masker on the same samples of ``dataset``; returns the filled protocol."""
    from rich.progress import Progress

    chosen = [Masker(m) for m in maskers]
    name = protocol or DEFAULT_PROTOCOL.get(dataset.name, "cloudsen12")
    options: dict[str, Any] = {}
    if name == "cloudsen12":
        options["masker_tasks"] = {m.name: m.tasks() for m in chosen}
    scorer = get_protocol(name, **options)
    models = _ModelCache()
    count = len(dataset) if limit is None else min(limit, len(dataset))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("benchmark", total=count)
        for index in range(count):
            sample = dataset[index]
            truth = sample.get("mask_canonical")
            if truth is None:
                raise ModelError(
                    f"sample {index} has no canonical reference mask; open the dataset with labels"
                )
            meta = {"id": str(sample["meta"].get("id", index)), **sample["meta"]}
            for masker in chosen:
                pred = masker_prediction(masker, sample, models)
                scorer.update(masker.name, pred, truth, sample.get("valid"), meta)
            bar.advance(task)
    return scorer


def benchmark_folders(
    predictions: Path,
    references: Path,
    *,
    pred_scheme: str,
    ref_scheme: str,
    masker: str = "predictions",
    protocol: str = "cloudsen12",
) -> Protocol:
    """Score a folder of predicted rasters against reference rasters matched by file name."""
    import rasterio

    from s2clouds.errors import DatasetError

    refs = {p.stem: p for p in Path(references).glob("*.tif")}
    preds = {p.stem: p for p in Path(predictions).glob("*.tif")}
    common = sorted(refs.keys() & preds.keys())
    if not common:
        raise DatasetError(
            f"no file name is in both {predictions} and {references}; name predictions like references"
        )
    options = (
        {"masker_tasks": {masker: tasks_for_scheme(pred_scheme)}}
        if protocol == "cloudsen12"
        else {}
    )
    scorer = get_protocol(protocol, **options)
    for stem in common:
        with rasterio.open(preds[stem]) as p, rasterio.open(refs[stem]) as r:
            pred, truth = p.read(1), r.read(1)
        canon_truth = to_canonical(truth, ref_scheme, unknown="nodata")
        scorer.update(
            masker,
            to_canonical(pred, pred_scheme, unknown="nodata"),
            canon_truth,
            canon_truth != NODATA,
            {"id": stem},
        )
    return scorer
