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
from s2clouds.benchmark.protocols import (
    LAYER_MASKER_PREFIX,
    CloudSEN12Protocol,
    Protocol,
    Sen12msLandCoverProtocol,
    get_protocol,
    tasks_for_scheme,
)
from s2clouds.datasets.base import CloudDataset
from s2clouds.errors import BenchmarkError, CRSMismatchError, DatasetError, ModelError
from s2clouds.labels import to_canonical
from s2clouds.models.base import ModelContext
from s2clouds.models.cache import cached_model

LAYER_PREFIX = LAYER_MASKER_PREFIX


@dataclass(frozen=True)
class Masker:
    """A masker to score, resolved once: a registered model, or a mask layer stored in the
    dataset (``layer:NAME``, see :meth:`~s2clouds.datasets.base.CloudDataset.stored_layer`).

    ``scheme`` is the label scheme of the masker's output (canonical for models).
    """

    name: str
    layer: str | None
    scheme: str

    @classmethod
    def parse(cls, name: str, dataset: type[CloudDataset] | CloudDataset | None = None) -> Masker:
        """Resolve ``name``; unknown models, and layers that ``dataset`` does not store as
        masks, are refused here."""
        if name.startswith(LAYER_PREFIX):
            if dataset is None:
                raise ModelError(f"{name} is a stored layer: give the dataset that stores it")
            key, scheme = dataset.stored_layer(name[len(LAYER_PREFIX) :])
            return cls(name, key, scheme)
        from s2clouds.models.registry import get_model_info

        info = get_model_info(name)
        return cls(name, None, "canonical" if info.predicts_shadow else "s2cloudless")

    def tasks(self) -> tuple[str, ...]:
        """CloudSEN12 tasks this masker can be scored on (no shadow task without a shadow class)."""
        return tasks_for_scheme(self.scheme)


def _predict_image(
    model: Any, image: np.ndarray, bands: Sequence[str], context: ModelContext
) -> np.ndarray:
    """Canonical mask (H, W) of one (C, H, W) image (or (T, H, W) of a (T, C, H, W) series)."""
    from s2clouds.inference.window import predict_array, probabilities_to_mask

    if image.ndim == 4:
        return np.stack([_predict_image(model, frame, bands, context) for frame in image])
    selected = image[band_indices(bands, model.bands)]
    return probabilities_to_mask(predict_array(model, selected, context), selected)


def masker_prediction(masker: Masker, sample: dict[str, Any]) -> np.ndarray:
    """The canonical mask a masker gives for one sample."""
    if masker.layer is not None:
        layers = sample.get("layers") or {}
        if masker.layer not in layers:
            raise ModelError(
                f"the dataset sample has no layer {masker.layer!r}; available: {', '.join(layers) or 'none'}"
            )
        return to_canonical(layers[masker.layer], masker.scheme, unknown="nodata")
    model = cached_model(masker.name, tuple(sample["bands"]))
    return _predict_image(
        model, sample["image"], sample["bands"], ModelContext.of_meta(sample.get("meta", {}))
    )


def make_protocol(name: str, maskers: Sequence[Masker]) -> Protocol:
    """The protocol ``name``, told which tasks each masker can be scored on."""
    scorer = get_protocol(name)
    if isinstance(scorer, Sen12msLandCoverProtocol):
        raise BenchmarkError(
            "the SEN12MS land-cover protocol scores land-cover maps, not cloud masks: run "
            "'s2clouds landcover benchmark', or score cloud maskers on SEN12MS's cloud-free "
            "patches with protocol=false_cloud"
        )
    if isinstance(scorer, CloudSEN12Protocol):
        for masker in maskers:
            scorer.set_tasks(masker.name, masker.tasks())
    return scorer


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

    chosen = [Masker.parse(m, dataset) for m in maskers]
    scorer = make_protocol(protocol or dataset.protocol, chosen)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("benchmark", total=count)
        for index in range(count):
            sample = dataset[index]
            truth = sample.get("mask_canonical")
            if truth is None:
                raise DatasetError(
                    f"sample {index} has no canonical reference mask; open the dataset with "
                    "labels and canonical=True"
                )
            meta = {"id": str(index), **sample["meta"]}
            for masker in chosen:
                pred = masker_prediction(masker, sample)
                image_id = scorer.update(masker.name, pred, truth, sample.get("valid"), meta)
                scorer.sample_index[image_id] = index
            bar.advance(task)
    return scorer


#: worst images drawn per masker in a report
WORST_IMAGES = 3


@dataclass(frozen=True)
class Quicklook:
    """A drawn worst image: whose (``masker``, ``image_id``), its ``caption`` and PNG ``path``."""

    masker: str
    image_id: str
    caption: str
    path: Path


def worst_quicklooks(
    scorer: Protocol, dataset: CloudDataset, folder: Path, count: int = WORST_IMAGES
) -> list[Quicklook]:
    """PNG quicklooks (true colour, truth, prediction) of each masker's ``count`` worst images
    by the protocol's first per-image score, written into ``folder``; pass them to
    ``write_report`` (``failures`` and ``thumbnails``). Time series (4-D images) are skipped."""
    from s2clouds.viz import plot_sample, save_figure

    folder.mkdir(parents=True, exist_ok=True)
    looks: list[Quicklook] = []
    column = scorer.per_image_scores[0]
    for masker_name in scorer.maskers:
        masker = Masker.parse(masker_name, dataset)
        for image_id, score in scorer.worst_images(masker_name, count):
            index = scorer.sample_index.get(image_id)
            if index is None:
                continue
            sample = dataset[index]
            if np.asarray(sample["image"]).ndim != 3:
                continue
            prediction = masker_prediction(masker, sample)
            caption = f"{masker_name}: image {image_id}, {column} {score:.3f}"
            figure = plot_sample(
                {**sample, "prediction": prediction}, caption, ["prediction"], panel_size=2.6
            )
            path = save_figure(figure, folder / f"worst_{len(looks):03d}.png")
            looks.append(Quicklook(masker_name, image_id, caption, path))
    return looks


def benchmark_folders(
    predictions: Path,
    references: Path,
    *,
    pred_scheme: str,
    ref_scheme: str,
    masker: str = "predictions",
    protocol: str = "cloudsen12",
) -> Protocol:
    """Score a folder of predicted rasters against reference rasters matched by file name.

    Each pair must share CRS, transform and size (:class:`CRSMismatchError` otherwise).
    """
    import rasterio

    refs = {p.stem: p for p in Path(references).glob("*.tif")}
    preds = {p.stem: p for p in Path(predictions).glob("*.tif")}
    common = sorted(refs.keys() & preds.keys())
    if not common:
        raise DatasetError(
            f"no file name is in both {predictions} and {references}; name predictions like references"
        )
    scorer = make_protocol(protocol, [Masker(masker, None, pred_scheme)])
    for stem in common:
        with rasterio.open(preds[stem]) as p, rasterio.open(refs[stem]) as r:
            if p.crs != r.crs or p.transform != r.transform:
                raise CRSMismatchError(
                    f"{preds[stem]} and {refs[stem]} are on different grids (CRS or transform); "
                    "resample the prediction onto the reference grid first"
                )
            pred, truth = p.read(1), r.read(1)
        scorer.update(
            masker,
            to_canonical(pred, pred_scheme, unknown="nodata"),
            to_canonical(truth, ref_scheme, unknown="nodata"),
            None,
            {"id": stem},
        )
    return scorer
