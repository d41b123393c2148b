"""Weight specs: what a weights file expects as input, where it came from, and its checksum.

Every learned model ships a :class:`WeightSpec` beside its weights (a sidecar
``<name>.json``, and inside an ONNX file under the metadata key :data:`SPEC_METADATA_KEY`).
The spec records the input contract (band names and order, reflectance scaling, resolution,
per-band mean/std normalisation), the output (label scheme and class names), provenance
(training data, licence, code version) and the sha256 of the weights file, so that a model
refuses input it was not trained for and weights that were modified.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from s2clouds import __version__
from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, ModelError, RadiometryError, S2CloudsError
from s2clouds.io.write import atomic_path
from s2clouds.labels import CANONICAL_CLASSES, get_scheme
from s2clouds.models.base import CloudModel, ModelContext
from s2clouds.radiometry import check_reflectance

#: key of the JSON spec in an ONNX model's ``metadata_props``
SPEC_METADATA_KEY = "s2clouds_spec"
#: input scalings a spec may declare; only unitless 0-1 reflectance is supported
SCALINGS = ("reflectance",)
CANONICAL_CLASS_NAMES: tuple[str, ...] = tuple(CANONICAL_CLASSES.values())
#: spec fields written only when they differ from these defaults (JSON values)
OPTIONAL_FIELDS: dict[str, Any] = {
    "features": [],
    "stride": 1,
    "shadow_reach_m": 0.0,
    "receptive_field": 0,
}
_HASH_CHUNK = 1 << 20
#: bounds of the integer fields of a spec: tiles, padding and context stay a few MB per band
SPEC_LIMITS: dict[str, tuple[int, int]] = {
    "tile_size": (1, 4096),
    "size_multiple": (1, 256),
    "halo": (0, 512),
    "stride": (1, 64),
    "receptive_field": (0, 2048),
}
#: largest magnitude of mean, std and resolution; longest text field
SPEC_MAX_VALUE, SPEC_MAX_TEXT = 1e4, 10_000
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightSpec:
    """The input contract and provenance of one weights file.

    ``bands``: canonical band names in the order the network reads them (C input channels).
    ``scaling``: ``"reflectance"`` (unitless 0-1, DN / 10000 with the baseline offset removed).
    ``resolution``: ground sampling distance in metres the model was trained at.
    ``mean``/``std``: per-band normalisation in reflectance units, one value per band:
    the network sees ``(reflectance - mean) / std``.
    ``classes``: output class names in channel order (the canonical 4 for ``"canonical"``).
    ``tile_size``: edge in pixels of the tiles the inference engine feeds the model (bounds
    memory; the network itself takes any size that is a multiple of ``size_multiple``).
    ``size_multiple``: input height and width must be multiples of this (inputs are
    reflection-padded up to it); ``halo``: pixels of context the model needs around a tile.
    ``sha256``: hex digest of the weights file (None inside the file itself).
    ``features``: the per-pixel feature stack of a pixel model (empty for networks, which
    read the bands themselves); ``stride``: a pixel model classifies every ``stride``-th
    pixel in each direction and interpolates the probabilities bilinearly in between.
    ``shadow_reach_m``: when above 0, predicted shadow is kept only where a
    predicted cloud lies towards the sun within that many metres
    (:mod:`s2clouds.models.shadow_geometry`).
    ``receptive_field``: radius in pixels of the network's receptive field, known from its
    architecture (0: not recorded; it is then measured once per weights file and cached).
    """

    name: str
    architecture: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scaling: str = "reflectance"
    resolution: float = 10.0
    label_scheme: str = "canonical"
    classes: tuple[str, ...] = CANONICAL_CLASS_NAMES
    tile_size: int = 512
    size_multiple: int = 32
    halo: int = 32
    training_data: str = ""
    licence: str = ""
    code_version: str = __version__
    sha256: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    features: tuple[str, ...] = field(default_factory=tuple)
    stride: int = 1
    shadow_reach_m: float = 0.0
    receptive_field: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", canonical_band_names(self.bands))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "features", tuple(self.features))
        self._validate()

    def _validate(self) -> None:
        n = len(self.bands)
        if n == 0:
            raise ModelError(f"weight spec {self.name!r} lists no bands; name the input bands")
        if len(self.mean) != n or len(self.std) != n:
            raise ModelError(
                f"weight spec {self.name!r}: mean ({len(self.mean)}) and std ({len(self.std)}) "
                f"need one value per band ({n}: {', '.join(self.bands)})"
            )
        if not all(np.isfinite(self.mean)) or not all(s > 0 for s in self.std):  # NaN too
            raise ModelError(
                f"weight spec {self.name!r}: mean must be finite and std positive; "
                "recompute them from the training data"
            )
        if self.scaling not in SCALINGS:
            raise ModelError(
                f"weight spec {self.name!r}: scaling {self.scaling!r} is not supported; "
                f"use one of {', '.join(SCALINGS)}"
            )
        get_scheme(self.label_scheme)  # raises LabelSchemeError for unknown schemes
        if self.label_scheme == "canonical" and self.classes != CANONICAL_CLASS_NAMES:
            raise ModelError(
                f"weight spec {self.name!r}: a canonical model outputs the classes "
                f"{', '.join(CANONICAL_CLASS_NAMES)} in that order; got {', '.join(self.classes)}"
            )
        self._check_bounds()

    def _check_bounds(self) -> None:
        """Every field of the right type and within :data:`SPEC_LIMITS` (a hostile spec must
        not make inference allocate without bound), the checksum a sha256 hex digest."""
        for key, (low, high) in SPEC_LIMITS.items():
            value = getattr(self, key)
            integral = isinstance(value, int) and not isinstance(value, bool)
            if not integral or not low <= value <= high:
                raise ModelError(
                    f"weight spec {self.name!r}: {key} is {value!r}, not a whole number from "
                    f"{low} to {high}; re-export the model"
                )
        numbers = {
            "mean": self.mean,
            "std": self.std,
            "resolution": (self.resolution,),
            "shadow_reach_m": (self.shadow_reach_m,),
        }
        for key, values in numbers.items():
            if not all(isinstance(v, int | float) and abs(v) <= SPEC_MAX_VALUE for v in values):
                raise ModelError(
                    f"weight spec {self.name!r}: {key} must hold numbers within "
                    f"±{SPEC_MAX_VALUE:g}; re-export the model"
                )
        texts = [self.name, self.architecture, self.training_data, self.licence, *self.notes]
        if not all(isinstance(t, str) and len(t) <= SPEC_MAX_TEXT for t in texts):
            raise ModelError(
                f"weight spec: name, architecture, training data, licence and notes must be "
                f"text of at most {SPEC_MAX_TEXT} characters; re-export the model"
            )
        if not all(isinstance(f, str) for f in self.features) or len(self.features) > 256:
            raise ModelError(f"weight spec {self.name!r}: features must be at most 256 names")
        if self.sha256 is not None and not SHA256_HEX.fullmatch(str(self.sha256)):
            raise ModelError(
                f"weight spec {self.name!r}: sha256 {self.sha256!r} is not a sha256 hex digest; "
                "keep the .json written with the model"
            )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists); the pixel-model fields are left out at
        their defaults, so that network specs stay readable by older s2clouds versions."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}
        for key, default in OPTIONAL_FIELDS.items():
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightSpec:
        """Inverse of :meth:`to_dict`; unknown keys are refused (they mean a newer format)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(
                f"weight spec has unknown fields {unknown}; it was written by a newer s2clouds "
                "(upgrade s2clouds) or edited by hand"
            )
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        try:
            return cls(**values)
        except S2CloudsError:
            raise
        except (TypeError, ValueError) as exc:  # missing fields, values of the wrong type
            raise ModelError(
                f"weight spec is incomplete or has a value of the wrong type ({exc}); "
                "re-export the model"
            ) from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> WeightSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"weight spec is not valid JSON ({exc}); re-export the model") from exc
        if not isinstance(data, dict):
            raise ModelError("weight spec JSON must be an object; re-export the model")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> WeightSpec:
        """A copy with ``changes`` applied (e.g. ``sha256=...``)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ input checks
    def check_bands(self, available: Iterable[str]) -> list[int]:
        """Positions of the model's bands within ``available`` (any spelling).

        Raises :class:`BandError` saying which bands the model needs and which are missing.
        """
        have = canonical_band_names(tuple(available))
        missing = [b for b in self.bands if b not in have]
        if missing:
            raise BandError(
                f"model {self.name!r} needs the bands {', '.join(self.bands)} (in that order); "
                f"the input lacks {', '.join(missing)} (it has {', '.join(have) or 'none'}). "
                "Give an input with those bands or choose a model trained on yours "
                "(s2clouds models)"
            )
        return [have.index(b) for b in self.bands]

    def check_image(self, image: np.ndarray) -> None:
        """Refuse an ``image`` that is not (C, H, W) with one plane per band, or not 0-1
        reflectance (:class:`BandError` / :class:`RadiometryError`)."""
        if image.ndim != 3 or image.shape[0] != len(self.bands):
            raise BandError(
                f"model {self.name!r} expects {len(self.bands)} bands "
                f"({', '.join(self.bands)}) as a (C, H, W) array; got shape {image.shape}"
            )
        try:
            check_reflectance(image)
        except RadiometryError as exc:
            raise RadiometryError(
                f"model {self.name!r} needs {self.scaling} (unitless 0-1): {exc}"
            ) from exc

    def normalise(self, image: np.ndarray) -> np.ndarray:
        """``(image - mean) / std`` per band as (C, H, W) float32, NaN (no data) -> 0."""
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        out = (image.astype(np.float32, copy=False) - mean) / std
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class SpecModel(CloudModel):
    """What every model backed by a weights file shares: its :class:`WeightSpec` (``spec``)
    and the name it reports (``_name``, default the spec's); bands, halo and tile size come
    from the spec. Subclasses set both attributes and add ``predict_proba``."""

    spec: WeightSpec
    _name: str | None

    @property
    def name(self) -> str:
        return self._name or self.spec.name

    @property
    def bands(self) -> tuple[str, ...]:
        return self.spec.bands

    @property
    def halo(self) -> int:
        return self.spec.halo

    @property
    def tile_size(self) -> int:
        return self.spec.tile_size

    def required_alignment(self, context: ModelContext) -> int:
        """The spec's ``size_multiple``: the network's pooling grid."""
        return self.spec.size_multiple

    def for_bands(self, available: Iterable[str]) -> Self:
        """This model, after checking that ``available`` holds every band it needs."""
        self.spec.check_bands(available)
        return self


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflection-pad (..., H, W) at the bottom and right so H and W are multiples of
    ``multiple``; crop the model output back with ``[..., :H, :W]``."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    widths = [(0, 0)] * (image.ndim - 2) + [(0, pad_h), (0, pad_w)]
    if min(h, w) > 1:
        return np.pad(image, widths, mode="reflect")
    return np.pad(image, widths, mode="edge")


# ---------------------------------------------------------------------------- files
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(weights: str | Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(weights).with_suffix(".json")


def write_sidecar(spec: WeightSpec, weights: str | Path) -> Path:
    """Write ``spec`` with the sha256 of ``weights`` as ``<weights stem>.json`` (atomically:
    a temporary file renamed into place); returns its path."""
    path = sidecar_path(weights)
    with atomic_path(path) as tmp:
        tmp.write_text(spec.replace(sha256=sha256_file(weights)).to_json() + "\n")
    return path


def read_sidecar(weights: str | Path) -> WeightSpec:
    """The spec in the sidecar JSON of ``weights`` (:class:`ModelError` when missing)."""
    path = sidecar_path(weights)
    if not path.is_file():
        raise ModelError(
            f"weight spec {path} not found beside {Path(weights).name}; keep the .json that "
            "'s2clouds export' wrote next to the model file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(
            f"weight spec {path} is not UTF-8 JSON ({exc}); re-export the model"
        ) from exc
    return WeightSpec.from_json(text)


def unverifiable(weights: str | Path) -> ModelError:
    """The error for weights without a checksum to verify them against (no sidecar spec,
    or one whose sha256 is null)."""
    path = Path(weights)
    return ModelError(
        f"{path} cannot be verified: its spec sidecar {sidecar_path(path).name} is missing or "
        "has no sha256. Keep the .json written with the model ('s2clouds export'), or write "
        "one for weights you trust with s2clouds.models.weights.write_sidecar"
    )


def verify_weights(weights: str | Path, spec: WeightSpec) -> None:
    """Refuse ``weights`` whose sha256 differs from ``spec.sha256``, or that cannot be
    checked because the spec has none (:class:`ModelError`): no weights run unverified."""
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file {path} not found; check the path")
    if spec.sha256 is None:
        raise unverifiable(path)
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise ModelError(
            f"corrupt or modified weights: {path} has sha256 {actual[:12]}..., its spec says "
            f"{spec.sha256[:12]}...; re-download or re-export the model"
        )


def same_contract(a: WeightSpec, b: WeightSpec) -> bool:
    """True when two specs agree on everything but the checksum."""
    return a.replace(sha256=None) == b.replace(sha256=None)


def spec_summary(spec: WeightSpec) -> str:
    """One line: architecture, bands, resolution and training data of a spec."""
    parts = [spec.architecture, f"bands {','.join(spec.bands)}", f"{spec.resolution:g} m"]
    if spec.training_data:
        parts.append(f"trained on {spec.training_data}")
    return "; ".join(parts)
