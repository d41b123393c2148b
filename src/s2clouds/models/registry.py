"""Model registry: names -> factories, and what each model expects."""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2clouds.bands import L1C_BANDS, L2A_BANDS, RGBN_BANDS, SWIR6_BANDS, SWIR10_BANDS
from s2clouds.errors import ModelError
from s2clouds.models.base import CloudModel, as_cloud_model
from s2clouds.models.info import ModelInfo
from s2clouds.registry import Registry

#: entry-point group of third-party models: each names a :class:`ModelInfo`, or a function
#: of no arguments that returns one (docs/plugins.md)
MODEL_ENTRY_POINTS = "s2clouds.models"
#: the default: the shipped model that uses the most of the input's bands (AUTO_CHOICES)
DEFAULT_MODEL = "auto"


@dataclass(frozen=True)
class AutoChoice:
    """A row of the automatic model choice: ``model`` serves inputs that hold ``bands`` and
    whose processing level is one of ``levels`` (None: unknown level)."""

    model: str
    bands: tuple[str, ...]
    levels: tuple[str | None, ...] = ("L1C", "L2A", None)
    why: str = ""


#: first match wins, so every input gets the model that uses the most of its bands: the
#: 13-band L1C model needs the cirrus band (L2A products drop B10; a 13-band stack flagged
#: L2A gets the 12-band model), then 12 bands without cirrus, the 10 and 20 m bands (the
#: usual analysis-ready stack, 11 bands without B09 included), blue-green-red-NIR with both
#: SWIR bands, then 4 bands
AUTO_CHOICES: tuple[AutoChoice, ...] = (
    AutoChoice(
        "s2clouds-pixel-l1c13",
        L1C_BANDS,
        ("L1C", None),
        "13 L1C bands: SWIR and the cirrus band B10",
    ),
    AutoChoice(
        "s2clouds-pixel-swir12",
        L2A_BANDS,
        why="12 bands with SWIR, no cirrus band (L2A, or L1C without B10)",
    ),
    AutoChoice(
        "s2clouds-pixel-swir10",
        SWIR10_BANDS,
        why="the 10 and 20 m bands (B02-B08, B8A, B11, B12), without B01 or B09",
    ),
    AutoChoice(
        "s2clouds-pixel-swir6",
        SWIR6_BANDS,
        why="blue, green, red, NIR and both SWIR bands (B11, B12)",
    ),
    AutoChoice("s2clouds-pixel-rgbn", RGBN_BANDS, why="blue, green, red and NIR only"),
)


def choose_model(available_bands: Sequence[str], level: str | None = None) -> AutoChoice:
    """The row of :data:`AUTO_CHOICES` for an input with ``available_bands`` and ``level``.

    Raises :class:`BandError` listing what each model needs when none fits.
    """
    from s2clouds.bands import canonical_band_names
    from s2clouds.errors import BandError

    have = set(canonical_band_names(tuple(available_bands)))
    level = level.upper() if level else None
    if level == "L2A" and "B10" in have:
        warnings.warn(
            "the input is declared L2A but holds the cirrus band B10, which L2A products do "
            "not have: B10 is left out and the 12-band model is used. If the data is L1C, "
            "declare it with level=L1C",
            stacklevel=2,
        )
    for choice in AUTO_CHOICES:
        if set(choice.bands) <= have and level in choice.levels:
            return choice
    needs = "; ".join(f"{c.model}: {', '.join(c.bands)}" for c in AUTO_CHOICES)
    raise BandError(
        f"no model fits an input with the bands {', '.join(sorted(have)) or 'none'}; "
        f"each model needs at least: {needs}. Give more bands, or choose a model with model= "
        "(the physical model needs B02, B03, B04 and B08)"
    )


def resolve_model_name(name: str, available_bands: Sequence[str], level: str | None) -> str:
    """``name``, or the model :func:`choose_model` picks when it is ``"auto"``."""
    return choose_model(available_bands, level).model if name == DEFAULT_MODEL else name


def _plugin_model(name: str, loaded: Any) -> ModelInfo:
    """The :class:`ModelInfo` an entry point ``name`` loads (or that its function returns),
    under the entry point's name."""
    info = loaded if isinstance(loaded, ModelInfo) else loaded()
    if not isinstance(info, ModelInfo):
        raise TypeError(f"expected a ModelInfo (or a function returning one), got {info!r}")
    return info if info.name == name else dataclasses.replace(info, name=name)


MODELS: Registry[ModelInfo] = Registry(
    "model",
    builtins="s2clouds.models.builtin",  # registers the shipped models on first lookup
    group=MODEL_ENTRY_POINTS,
    adapt=_plugin_model,
    hint="(or give the path to a saved model: .onnx, .lgbm)",
)


def register(info: ModelInfo, *, replace: bool = False) -> ModelInfo:
    """Add a model to the registry under ``info.name`` (a taken name is refused unless
    ``replace``)."""
    return MODELS.register(info.name, info, replace=replace)


def list_models() -> list[ModelInfo]:
    """Every registered model (built-in, then plugins)."""
    return MODELS.values()


def get_model_info(name: str) -> ModelInfo:
    """The registered model ``name``, or the saved model at ``name`` when it is a path to an
    exported ``.onnx`` network or a ``.lgbm`` pixel model (with its ``.json`` spec beside).
    :class:`~s2clouds.errors.UnknownNameError` for other names."""
    if name in MODELS:
        return MODELS[name]
    suffix = Path(name).suffix.lower()
    if suffix in MODEL_FILE_KINDS:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} not found; check the path")
        return model_file_info(path, name=name)  # the model reports the path as its name
    raise MODELS.unknown(name)


#: model file suffix -> module and function that build its registry entry (imported on use)
MODEL_FILE_KINDS: dict[str, tuple[str, str]] = {
    ".onnx": ("s2clouds.models.onnx_model", "onnx_model_info"),  # exported network
    ".lgbm": ("s2clouds.models.pixel", "pixel_model_info"),  # LightGBM pixel model
}


def model_file_info(path: Path, name: str | None = None) -> ModelInfo:
    """The registry entry of a saved model file (see :data:`MODEL_FILE_KINDS`) under ``name``."""
    module, function = MODEL_FILE_KINDS[path.suffix.lower()]
    info: ModelInfo = getattr(importlib.import_module(module), function)(path, name=name)
    return info


def get_model(name: str, available_bands: Sequence[str], level: str | None = None) -> CloudModel:
    """Build model ``name`` for a scene that has ``available_bands`` at processing ``level``
    (``"auto"`` picks the shipped model for those bands and level: :func:`choose_model`).
    A duck-typed model (a plugin's) gets the defaults of :class:`CloudModel`
    (:func:`~s2clouds.models.base.as_cloud_model`)."""
    info = get_model_info(resolve_model_name(name, available_bands, level))
    return as_cloud_model(info.factory(available_bands))
