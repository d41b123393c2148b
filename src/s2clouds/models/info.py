"""What a registered model is: :class:`ModelInfo`, and the entry of a model backed by a
weights file. Kept apart from the registry itself so that model modules can build entries
without importing the registry (which imports the built-in models)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from s2clouds.models.base import CloudModel, SupportsCloudModel
from s2clouds.models.weights import WeightSpec, spec_summary


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model needs and what it gives.

    ``factory(available_bands)`` builds the model for a scene's bands. ``bands`` lists the
    minimum bands; ``notes`` say what it cannot do (e.g. thin vs thick cloud).
    """

    name: str
    #: a model that does not subclass CloudModel gets its defaults (see as_cloud_model)
    factory: Callable[[Sequence[str]], CloudModel | SupportsCloudModel]
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
