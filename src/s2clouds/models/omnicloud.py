"""OmniCloudMask (Wright et al. 2025, DPIRD; MIT) as a peer model, from weights kept locally.

OmniCloudMask's package fetches its weights from a model hub at run time; s2clouds never
downloads weights, so the weight files of the model version the installed package lists
(``omnicloudmask/model_download_links.csv``; version 4: an ensemble of two U-Nets) must lie
in the folder named by the environment variable :data:`WEIGHTS_ENV`. The networks are built
and run by the ``omnicloudmask`` package itself (``predict_from_array`` with those networks
as its ``custom_models``), so its per-patch normalisation, patching (1000 px patches,
300 px overlap) and ensembling are the package's own.

Input: red, green and NIR (``B04 B03 B08``) at the input's resolution (the models are made
for 10-50 m); any scaling (each patch is normalised by its own mean and std); NaN is fed as
its no-data value 0. Output: its four classes are the canonical ones (clear, thick cloud,
thin cloud, cloud shadow), as softmax probabilities.
"""

from __future__ import annotations

import csv
import functools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds._optional import install_hint
from s2clouds.errors import BandError, ModelError
from s2clouds.models.base import N_CLASSES, CloudModel, ModelContext, fill_clear
from s2clouds.models.peers import check_stack, import_peer, missing_bands

#: environment variable: the folder holding OmniCloudMask's weight files
WEIGHTS_ENV = "S2CLOUDS_OMNICLOUDMASK_WEIGHTS"
OCM_BANDS = ("B04", "B03", "B08")  # red, green, NIR: its input order
OCM_INSTALL_HINT = install_hint("omnicloudmask")
OCM_PATCH, OCM_OVERLAP = 1000, 300  # px: its own defaults
OCM_MIN_SIZE = 50  # px: smaller inputs are padded with no data (its soft minimum)
#: a weight file this small is a failed download (the package's own test)
MIN_WEIGHTS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class OcmWeights:
    """One network of the OmniCloudMask ensemble: its file, encoder and library names."""

    path: Path
    encoder: str
    library: str


def listed_weights(version: float | None = None) -> tuple[float, list[dict[str, str]]]:
    """The model version (default: the latest the installed package lists) and the rows of
    its ``model_download_links.csv`` for that version."""
    package = import_peer("omnicloudmask.download_models", "omnicloudmask")
    with package.model_index_path.open() as handle:
        rows = list(csv.DictReader(handle))
    chosen = version if version is not None else max(float(r["version"]) for r in rows)
    return chosen, [r for r in rows if float(r["version"]) == chosen]


def local_weights(folder: str | None = None) -> list[OcmWeights]:
    """The weight files of the latest OmniCloudMask version in ``folder`` (default: the
    environment variable :data:`WEIGHTS_ENV`); :class:`ModelError` naming the files expected
    when the variable is unset or a file is missing or truncated."""
    version, rows = listed_weights()
    names = [r["file_name"] for r in rows]
    expected = " and ".join(names)
    given = folder if folder is not None else os.environ.get(WEIGHTS_ENV, "")
    if not given:
        raise ModelError(
            f"OmniCloudMask needs its weights on this machine (s2clouds downloads none): set "
            f"{WEIGHTS_ENV} to a folder holding {expected} (OmniCloudMask model version "
            f"{version:g}, MIT licence)"
        )
    weights = []
    for row in rows:
        path = Path(given).expanduser() / row["file_name"]
        if not path.is_file() or path.stat().st_size <= MIN_WEIGHTS_BYTES:
            what = "is truncated" if path.is_file() else "is missing"
            raise ModelError(
                f"OmniCloudMask weights {path} {what}; {WEIGHTS_ENV} must name a folder "
                f"holding {expected} (model version {version:g})"
            )
        weights.append(OcmWeights(path, row["timm_model_name"], row["model_library"]))
    return weights


@functools.lru_cache(maxsize=2)
def _networks(weights: tuple[OcmWeights, ...]) -> list[Any]:
    """The ensemble's torch networks on the CPU (built once per set of files)."""
    utils = import_peer("omnicloudmask.model_utils", "omnicloudmask")
    torch = import_peer("torch", "omnicloudmask")
    networks = []
    for w in weights:
        try:
            networks.append(
                utils.load_model_from_weights(
                    model_name=w.encoder,
                    weights_path=w.path,
                    model_library=w.library,
                    device=torch.device("cpu"),
                )
            )
        except Exception as exc:  # safetensors and torch raise their own types
            raise ModelError(
                f"OmniCloudMask weights {w.path} cannot be loaded ({exc}); use the file of "
                "the OmniCloudMask release the installed package lists"
            ) from exc
    return networks


@dataclass(frozen=True, kw_only=True)
class OmniCloudMaskModel(CloudModel):
    """OmniCloudMask's ensemble as canonical probabilities (see the module docstring).

    ``weights``: the ensemble's files (:func:`local_weights`). ``halo``: px of context
    around a window (its patches overlap by 300 px; 128 px keeps the block seams small).
    """

    weights: tuple[OcmWeights, ...]
    name: str = "omnicloudmask"
    bands: tuple[str, ...] = OCM_BANDS
    halo: int = 128

    @classmethod
    def for_bands(cls, available: Sequence[str]) -> OmniCloudMaskModel:
        """The model for a scene with red, green and NIR, from the weights in the folder
        :data:`WEIGHTS_ENV` names."""
        missing = missing_bands(available, OCM_BANDS)
        if missing:
            raise BandError(
                f"OmniCloudMask needs red, green and NIR ({', '.join(OCM_BANDS)}); missing "
                f"{', '.join(missing)}"
            )
        return cls(weights=tuple(local_weights()))

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 from (3, H, W) red, green, NIR."""
        check_stack(image, self.bands, self.name)
        package = import_peer("omnicloudmask", "omnicloudmask")
        h, w = image.shape[1:]
        data = np.nan_to_num(image.astype(np.float32), nan=0.0)
        size = (max(h, OCM_MIN_SIZE), max(w, OCM_MIN_SIZE))
        data = np.pad(data, ((0, 0), (0, size[0] - h), (0, size[1] - w)))  # 0: no data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notes on small inputs and patch sizes
            probs = package.predict_from_array(
                data,
                patch_size=OCM_PATCH,
                patch_overlap=OCM_OVERLAP,
                inference_device="cpu",
                export_confidence=True,
                softmax_output=True,
                no_data_value=0,
                custom_models=_networks(self.weights),
                pred_classes=N_CLASSES,
            )
        out = np.asarray(probs, dtype=np.float32)[:, :h, :w].copy()
        total = out.sum(axis=0)  # its blended patches sum to 1 only to about 0.5 %
        out /= np.where(total > 0, total, 1.0)
        nodata = ~np.all(image > 0, axis=0)  # NaN or 0 in a band: no data for the package
        return fill_clear(out, nodata)
