"""Registration of the models that ship with s2clouds.

Peer tools run as s2clouds models (optional: pip install "s2clouds[peers]"). Importing
s2clouds.models.peers is cheap: s2cloudless, ukis-csmask and onnxruntime load on first use.
CD-FCNN ships with s2clouds (converted to ONNX, MIT licence) and needs only onnxruntime.
Each peer runs at its documented operating point; ``<name>@native`` runs it at the input's
resolution.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from s2clouds._optional import install_hint
from s2clouds.models.base import CloudModel
from s2clouds.models.cdfcnn import PAPER, VARIANTS, cdfcnn_model
from s2clouds.models.coarse import NATIVE_SUFFIX
from s2clouds.models.omnicloud import OCM_BANDS, WEIGHTS_ENV, OmniCloudMaskModel
from s2clouds.models.peers import (
    S2CLOUDLESS_BANDS,
    UKIS_BANDS_4,
    S2CloudlessModel,
    UkisCsmaskModel,
)
from s2clouds.models.physical import MINIMUM_BANDS, PhysicalModel
from s2clouds.models.registry import (
    AUTO_CHOICES,
    DEFAULT_MODEL,
    MODEL_FILE_KINDS,
    ModelInfo,
    choose_model,
    get_model,
    model_file_info,
    register,
)

register(
    ModelInfo(
        name="physical",
        factory=PhysicalModel.for_bands,
        bands=MINIMUM_BANDS,
        description=(
            "SEN12MS cloud/shadow scores (Schmitt et al. 2019): spectral tests + shadow "
            "projection along the sun azimuth; uses B01, B10, B11 when present"
        ),
        notes=(
            "thick and thin cloud are not separated: all cloud is reported as thick cloud",
            "without SWIR (B11), snow and bright soil can be mistaken for cloud",
        ),
    )
)


def register_with_native(
    info: ModelInfo,
    native: Callable[[Sequence[str]], CloudModel],
    operating_point: str,
    resampling_note: str,
) -> None:
    """Register peer ``info``, which runs at ``operating_point`` (``resampling_note``, a note
    added to its entry, says how), and ``<name>@native``, built by ``native``, which runs
    it at the input's resolution."""
    register(dataclasses.replace(info, notes=(resampling_note, *info.notes)))
    register(
        dataclasses.replace(
            info,
            name=f"{info.name}{NATIVE_SUFFIX}",
            factory=native,
            description=f"{info.name} at the input's resolution instead of {operating_point}, "
            f"otherwise as {info.name!r}",
        )
    )


register_with_native(
    ModelInfo(
        name="s2cloudless",
        factory=S2CloudlessModel.for_bands,
        bands=S2CLOUDLESS_BANDS,
        description=(
            "Sentinel Hub's s2cloudless (LightGBM pixel classifier) run at ~160 m with its "
            "own smoothing and dilation; L1C TOA reflectance only (needs B10)"
        ),
        notes=(
            "no cloud shadow class and no thin/thick split: all cloud is reported as thick",
            "refuses L2A input",
            f"needs the optional peer tools: {install_hint('peers')}",
        ),
        licence="CC BY-SA 4.0 (s2cloudless code and model)",
        predicts_shadow=False,
    ),
    functools.partial(S2CloudlessModel.for_bands, native=True),
    "about 160 m",
    "the input is block-averaged to ~160 m and the probabilities are interpolated back, so "
    "edges are coarse (s2cloudless@native: at the input's resolution)",
)

register_with_native(
    ModelInfo(
        name="ukis-csmask",
        factory=UkisCsmaskModel.for_bands,
        bands=UKIS_BANDS_4,
        description=(
            "DLR's ukis-csmask 1.0 U-Net (cloud, cloud shadow) at about 30 m, as its docs "
            "recommend, on 256 px tiles; the 6-band network when B11 and B12 are present; "
            "L1C or L2A network by scene level"
        ),
        notes=(
            "thick and thin cloud are not separated: all cloud is reported as thick cloud",
            "an unknown level is treated as L2A",
            f"needs the optional peer tools: {install_hint('peers')}",
        ),
        licence="Apache-2.0",
    ),
    functools.partial(UkisCsmaskModel.for_bands, native=True),
    "about 30 m",
    "the input is block-averaged to about 30 m and the probabilities are interpolated back "
    "(ukis-csmask@native: at the input's resolution, about 10x slower)",
)


CDFCNN_NOTES = (
    "cloud only: no cloud shadow class and no thin/thick split (all cloud is thick cloud)",
    "trained on Landsat-8 Biome; meant for Sentinel-2 L1C TOA reflectance",
    "the weights ship with s2clouds (converted from the published Keras file; MIT licence, "
    "text in s2clouds/models/weights/cdfcnn/LICENSE)",
)


def register_cdfcnn(name: str, what: str) -> None:
    """Register CD-FCNN variant ``name`` at 30 m and as ``name@native``."""
    register_with_native(
        ModelInfo(
            name=name,
            factory=functools.partial(cdfcnn_model, name),
            bands=VARIANTS[name].bands,
            description=f"CD-FCNN {what} ({PAPER.split(',')[0]} et al. 2021) at 30 m, "
            "run on onnxruntime; cloud where p >= 0.5",
            notes=CDFCNN_NOTES,
            licence="MIT (CD-FCNN weights, Universidad de Valencia)",
            predicts_shadow=False,
        ),
        functools.partial(cdfcnn_model, name, native=True),
        "30 m",
        f"the input is block-averaged to 30 m and the probabilities are interpolated back "
        f"({name}@native: at the input's resolution)",
    )


register_cdfcnn("cd-fcnn", "RGBISWIR: B02 B03 B04 B08 B11 B12")
register_cdfcnn("cd-fcnn-rgbi", "RGBI: B02 B03 B04 B08")

register(
    ModelInfo(
        name="omnicloudmask",
        factory=OmniCloudMaskModel.for_bands,
        bands=OCM_BANDS,
        description=(
            "OmniCloudMask (Wright et al. 2025), its ensemble of U-Nets on red, green and NIR "
            "at the input's resolution (made for 10-50 m), run by its own package; weights "
            f"from the folder ${WEIGHTS_ENV}"
        ),
        notes=(
            f"s2clouds downloads no weights: put OmniCloudMask's weight files in a folder and "
            f"set {WEIGHTS_ENV} to it (the error names the files)",
            f"needs the omnicloudmask package (torch): {install_hint('omnicloudmask')}",
        ),
        licence="MIT (OmniCloudMask code and weights)",
    )
)


#: folder of the shipped weights: ``<name>.onnx`` networks and ``<name>.lgbm`` pixel models,
#: each with its ``<name>.json`` spec
WEIGHTS_DIR = Path(__file__).parent / "weights"


def register_shipped_weights(folder: Path = WEIGHTS_DIR) -> list[str]:
    """Register every saved model in ``folder`` under the name in its sidecar spec.

    Only the small JSON specs are read here; a model's weights are loaded (and their sha256
    checked) when it is first built. Returns the registered names.
    """
    if not folder.is_dir():
        return []
    paths = sorted(p for p in folder.iterdir() if p.suffix in MODEL_FILE_KINDS)
    return [register(model_file_info(path)).name for path in paths]


register_shipped_weights()


def _auto_factory(available: Sequence[str]) -> CloudModel:
    return get_model(choose_model(available).model, available)


register(
    ModelInfo(
        name=DEFAULT_MODEL,
        factory=_auto_factory,
        bands=AUTO_CHOICES[-1].bands,
        description="the default: picks the shipped model by the input's bands and level",
        notes=tuple(f"{c.why} -> {c.model}" for c in AUTO_CHOICES),
        licence="that of the model picked",
    )
)
