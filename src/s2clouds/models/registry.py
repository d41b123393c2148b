"""Model registry: names -> factories, and what each model expects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s2clouds.errors import ModelError
from s2clouds.models.base import CloudModel


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


_REGISTRY: dict[str, ModelInfo] = {}
#: the shipped learned model (ONNX in models/weights/); it beat the physical model on the
#: real dev chips (median cloud BOA 0.844 vs 0.818; held-out chip 3: 0.880 vs 0.864)
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
    """The registered model ``name``, or the exported model at ``name`` when it is a path to
    an existing ``.onnx`` file (see :mod:`s2clouds.models.onnx_model`)."""
    _ensure_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.lower().endswith(".onnx"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelError(f"ONNX model file {path} not found; check the path")
        from s2clouds.models.onnx_model import onnx_model_info

        return onnx_model_info(path, name=name)  # the model reports the path as its name
    raise ModelError(
        f"unknown model {name!r}; available: {', '.join(_REGISTRY)} "
        "(or give the path to an exported .onnx file)"
    )


def get_model(name: str, available_bands: Sequence[str]) -> CloudModel:
    """Build model ``name`` for a scene that has ``available_bands``."""
    return get_model_info(name).factory(available_bands)
