"""Model registry: names -> factories, and what each model expects."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s2clouds.errors import ModelError
from s2clouds.models.base import CloudModel
from s2clouds.models.weights import WeightSpec, spec_summary


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model needs and what it gives.

    ``factory(available_bands)`` builds the model for a scene's bands. ``bands`` lists the
    minimum bands; ``notes`` say what it cannot do (e.g. thin vs thick cloud).
    """

    name: str
    factory: Callable[[Sequence[str]], CloudModel]
    bands: tuple[str, ...]
    description: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    licence: str = "Apache-2.0"
    #: False for maskers that never predict cloud shadow (scored on the cloud task only)
    predicts_shadow: bool = True


def spec_model_info(
    spec: WeightSpec,
    name: str,
    factory: Callable[[Sequence[str]], CloudModel],
    *,
    kind: str,
    runtime: str,
    notes: Sequence[str] = (),
) -> ModelInfo:
    """The registry entry ``name`` of a model backed by a weights file with ``spec``: bands,
    licence and notes come from the spec; ``kind``/``runtime`` describe it."""
    return ModelInfo(
        name=name,
        factory=factory,
        bands=spec.bands,
        description=f"{kind} ({spec_summary(spec)}), run on {runtime}",
        notes=(*spec.notes, *notes),
        licence=spec.licence or "unknown (see the weight spec)",
    )


_REGISTRY: dict[str, ModelInfo] = {}
#: the shipped learned model (ONNX in models/weights/); on the held-out real chip (On Cloud N
#: chip 3) its cloud BOA is 0.922, against 0.864 for the physical model and 0.912 for ukis-csmask
DEFAULT_MODEL = "s2clouds-tiny-rgbn"


def register(info: ModelInfo) -> ModelInfo:
    """Add a model to the registry (names are unique)."""
    if info.name in _REGISTRY:
        raise ModelError(f"model {info.name!r} is registered twice")
    _REGISTRY[info.name] = info
    return info


def _ensure_builtin() -> None:
    if _REGISTRY:
        return
    from s2clouds.models import builtin  # noqa: F401  (registers the built-in models)


def list_models() -> list[ModelInfo]:
    """Every registered model."""
    _ensure_builtin()
    return list(_REGISTRY.values())


def get_model_info(name: str) -> ModelInfo:
    """The registered model ``name``, or the saved model at ``name`` when it is a path to an
    exported ``.onnx`` network or a ``.lgbm`` pixel model (with its ``.json`` spec beside)."""
    _ensure_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    suffix = Path(name).suffix.lower()
    if suffix in MODEL_FILE_KINDS:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} not found; check the path")
        return model_file_info(path, name=name)  # the model reports the path as its name
    raise ModelError(
        f"unknown model {name!r}; available: {', '.join(_REGISTRY)} "
        f"(or give the path to a saved model: {', '.join(MODEL_FILE_KINDS)})"
    )


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


def get_model(name: str, available_bands: Sequence[str]) -> CloudModel:
    """Build model ``name`` for a scene that has ``available_bands``."""
    return get_model_info(name).factory(available_bands)
