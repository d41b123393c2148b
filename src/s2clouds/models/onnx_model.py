"""Learned models exported to ONNX, run on onnxruntime (no torch needed).

An exported model is a ``.onnx`` file whose graph maps normalised reflectance
(N, C, H, W) float32 to canonical class probabilities (N, 4, H, W) (the softmax is part of
the graph), with H and W any multiple of ``spec.size_multiple``. Its :class:`WeightSpec`
sits in the file's ``metadata_props`` (key ``s2clouds_spec``) and in the sidecar
``<name>.json``, which also carries the sha256 of the ``.onnx`` file.

A network whose spec resolution is coarser than the input's (CD-FCNN: 30 m) runs on block
means of the input and its probabilities are interpolated back to the input grid, unless it
is built ``native`` (then it sees the input as it comes).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds._optional import install_hint, require
from s2clouds.errors import ModelError
from s2clouds.io.write import atomic_path
from s2clouds.models.base import N_CLASSES, ModelContext
from s2clouds.models.coarse import predict_on_blocks, resolution_factor
from s2clouds.models.shadow_geometry import ShadowGeometry
from s2clouds.models.weights import (
    SPEC_METADATA_KEY,
    SpecModel,
    WeightSpec,
    pad_to_multiple,
    read_sidecar,
    same_contract,
    sidecar_path,
    unverifiable,
    verify_weights,
)
from s2clouds.resources import model_threads, user_cache_dir

if TYPE_CHECKING:
    from s2clouds.models.info import ModelInfo

ONNX_INSTALL_HINT = install_hint("onnx")


def _import_onnxruntime() -> Any:
    return require("onnxruntime", "onnx", purpose="running ONNX models", error=ModelError)


@functools.lru_cache(maxsize=8)
def _session(path: Path, sha256: str | None, threads: int) -> Any:
    """One onnxruntime session per (file, content, thread count); ``sha256`` keys the cache
    so that a replaced file gets a new session."""
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(
            f"onnxruntime cannot load {path} ({exc}); the file is damaged or was exported "
            "with a newer opset: re-export it with 's2clouds export'"
        ) from exc


def set_embedded_spec(model: Any, spec: WeightSpec) -> None:
    """Write ``spec`` (without checksum) into an ONNX ``ModelProto``'s ``metadata_props``
    (key :data:`SPEC_METADATA_KEY`), replacing one that is there."""
    kept = [p for p in model.metadata_props if p.key != SPEC_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = SPEC_METADATA_KEY, spec.replace(sha256=None).to_json()


def embedded_spec(session: Any, path: Path) -> WeightSpec:
    """The spec stored in an ONNX model's ``metadata_props``."""
    try:
        meta = session.get_modelmeta().custom_metadata_map
    except (UnicodeDecodeError, RuntimeError) as exc:  # damaged metadata
        raise ModelError(f"{path} has unreadable metadata ({exc}); re-export it") from exc
    if SPEC_METADATA_KEY not in meta:
        raise ModelError(
            f"{path} carries no s2clouds weight spec (metadata key {SPEC_METADATA_KEY!r}); "
            "export it with 's2clouds export' so the model knows its bands and normalisation"
        )
    return WeightSpec.from_json(meta[SPEC_METADATA_KEY])


def load_spec(path: str | Path) -> WeightSpec:
    """The spec of an ONNX file from its sidecar JSON, which holds the checksum; without one
    the file cannot be verified and is refused before it is parsed (:class:`ModelError`)."""
    onnx_path = Path(path)
    if not sidecar_path(onnx_path).is_file():
        raise unverifiable(onnx_path)
    return read_sidecar(onnx_path)


class OnnxModel(ShadowGeometry, SpecModel):
    """A :class:`~s2clouds.models.base.CloudModel` over an exported ONNX network.

    ``path``: the ``.onnx`` file; ``spec``: its weight spec (default: read from the sidecar
    JSON, which must exist); the file's sha256 is checked against the spec on construction
    (:class:`ModelError` "corrupt or modified weights" on mismatch). ``threads``: intra-op
    threads of onnxruntime (default: all usable cores). ``name``: the name the model reports
    (default ``spec.name``); it must be one :func:`~s2clouds.models.registry.get_model`
    resolves, since the batch engines rebuild models by name (a file path works).
    ``native``: run the network at the input's resolution even when the spec's is coarser
    (default: on block means at about the spec's resolution, see :meth:`internal_factor`).
    """

    def __init__(
        self,
        path: str | Path,
        spec: WeightSpec | None = None,
        *,
        threads: int | None = None,
        name: str | None = None,
        native: bool = False,
    ) -> None:
        self.path = Path(path)
        self._name = name
        self.native = native
        if not self.path.is_file():
            raise ModelError(f"ONNX model {self.path} not found; check the path")
        self.spec = spec if spec is not None else load_spec(self.path)
        verify_weights(self.path, self.spec)
        self.threads = threads or model_threads()

    def session(self) -> Any:
        """The onnxruntime session (created once; refuses a file whose embedded spec
        disagrees with the sidecar)."""
        session = _session(self.path, self.spec.sha256, self.threads)
        inside = embedded_spec(session, self.path)
        if not same_contract(inside, self.spec):
            raise ModelError(
                f"{self.path} and its spec {sidecar_path(self.path).name} describe different "
                "models; keep the .json that was exported with this .onnx"
            )
        return session

    def internal_factor(self, context: ModelContext) -> int:
        """Input pixels per network pixel: the spec's resolution over the input's
        (``context.resolution``), rounded; 1 when ``native``, when the input is not at
        least 1.5 times finer, or when its resolution is unknown."""
        return 1 if self.native else resolution_factor(self.spec.resolution, context)

    def required_halo(self, context: ModelContext) -> int:
        """The radius of the network's receptive field (see :meth:`receptive_radius`), in
        input pixels: on block means, two more network pixels (the block and the bilinear
        interpolation back) times the factor."""
        factor = self.internal_factor(context)
        if factor == 1:
            return self.receptive_radius + self.shadow_halo(context)
        return (self.receptive_radius + 2) * factor + self.shadow_halo(context)

    def required_alignment(self, context: ModelContext) -> int:
        """Windows start on the network's pooling grid, in input pixels."""
        return self.spec.size_multiple * self.internal_factor(context)

    @functools.cached_property
    def receptive_radius(self) -> int:
        """Radius in pixels of the network's receptive field: the spec's
        ``receptive_field`` when it records one (from the architecture), else measured: the
        farthest output pixel that changes when one input pixel does, over every phase of
        the pooling grid (``size_multiple``), on a fixed random background, once per
        weights file (:func:`cached_receptive_radius`)."""
        if self.spec.receptive_field > 0:
            return self.spec.receptive_field
        return cached_receptive_radius(self)

    def logits_input(self, image: np.ndarray) -> np.ndarray:
        """Network input (1, C, H', W') float32: normalised, NaN -> 0, reflection-padded to
        multiples of ``spec.size_multiple``."""
        normalised = self.spec.normalise(image)
        return pad_to_multiple(normalised, self.spec.size_multiple)[np.newaxis]

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 from reflectance (C, H, W) in ``bands``
        order (0-1, NaN where there is no data), on block means of ``image`` when the spec's
        resolution is coarser (:meth:`internal_factor`; no-data pixels are then clear), and
        shadow no cloud can cast moved to clear when the spec sets a shadow reach
        (:class:`~s2clouds.models.shadow_geometry.ShadowGeometry`)."""
        self.spec.check_image(image)
        factor = self.internal_factor(context)

        def on_grid(grid: np.ndarray) -> np.ndarray:
            return self.with_shadow_geometry(self.network_probabilities(grid), context, factor)

        return predict_on_blocks(image, factor, on_grid)

    def network_probabilities(self, image: np.ndarray) -> np.ndarray:
        """Canonical probabilities (4, H, W) float32 of the network run on ``image``
        (C, H, W) as it is (reflection-padded to ``spec.size_multiple`` and cropped back)."""
        h, w = image.shape[1:]
        session = self.session()
        feed = {session.get_inputs()[0].name: self.logits_input(image)}
        try:
            probs = session.run(None, feed)[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime failed on {self.path.name}: {exc}") from exc
        if probs.ndim != 4 or probs.shape[1] != N_CLASSES:
            raise ModelError(
                f"{self.path.name} returned shape {probs.shape}; an s2clouds model must output "
                f"(N, {N_CLASSES}, H, W) probabilities: re-export it with 's2clouds export'"
            )
        out: np.ndarray = probs[0, :, :h, :w].astype(np.float32, copy=False)
        return out


#: the largest probe of :func:`measure_receptive_radius` (pixels); a field reaching its edge
#: is refused
MAX_PROBE = 2048


def measure_receptive_radius(model: OnnxModel, multiple: int, size: int = 256) -> int:
    """The farthest distance (pixels, Chebyshev) at which an impulse at the centre of a
    ``size`` x ``size`` random reflectance image changes ``model``'s probabilities, over the
    ``multiple`` diagonal phases of its pooling grid. The probe doubles while the change
    reaches its edge; :class:`ModelError` beyond :data:`MAX_PROBE`."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0.02, 0.5, (len(model.bands), size, size)).astype(np.float32)
    context = ModelContext(resolution=model.spec.resolution)
    base = model.predict_proba(image, context)
    radius = 0
    for phase in range(max(1, multiple)):
        centre = size // 2 + phase
        probe = image.copy()
        probe[:, centre, centre] = 0.95
        changed = np.any(model.predict_proba(probe, context) != base, axis=0)
        rows, cols = np.nonzero(changed)
        if rows.size:
            reach = max(np.abs(rows - centre).max(), np.abs(cols - centre).max())
            radius = max(radius, int(reach))
    if radius + multiple >= size // 2 - 1:
        if 2 * size > MAX_PROBE:
            raise ModelError(
                f"{model.name}: the receptive field exceeds {MAX_PROBE // 2} px; such a model "
                "cannot be run window by window"
            )
        return measure_receptive_radius(model, multiple, 2 * size)
    return radius


#: sub-folder of the user cache dir with one ``<sha256>.json`` per measured network
RECEPTIVE_CACHE = "receptive-field"


def receptive_cache_path(sha256: str) -> Path:
    """Where the measured receptive radius of the weights with ``sha256`` is kept."""
    return Path(user_cache_dir()) / RECEPTIVE_CACHE / f"{sha256}.json"


def cached_receptive_radius(model: OnnxModel) -> int:
    """:func:`measure_receptive_radius` of ``model``, measured once per weights file: kept
    in the user cache dir under the file's sha256 (verified when the model was built), so a
    later process reads it instead of running the network a hundred times. A cache that
    cannot be read or written is measured around."""
    sha256 = model.spec.sha256
    path = receptive_cache_path(sha256) if sha256 else None
    if path is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            radius = json.loads(path.read_text())["radius"]
            if isinstance(radius, int) and 0 <= radius <= MAX_PROBE:
                return radius
    radius = measure_receptive_radius(model, model.spec.size_multiple)
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"radius": radius, "model": model.name}) + "\n")
    return radius


def onnx_model_info(path: str | Path, name: str | None = None) -> ModelInfo:
    """A registry entry for the ONNX file at ``path`` (spec read from its sidecar),
    under ``name`` (default: the spec's name); models built from it report that name.

    The weights are checked (sha256) when the model is built, not here.
    """
    from s2clouds.models.info import spec_model_info

    onnx_path = Path(path)
    spec = load_spec(onnx_path)
    entry_name = name or spec.name
    factory = functools.partial(_build_onnx_model, onnx_path, spec, entry_name)
    return spec_model_info(spec, entry_name, factory, kind="learned model", runtime="onnxruntime")


def _build_onnx_model(
    path: Path, spec: WeightSpec, name: str, available: Sequence[str]
) -> OnnxModel:
    return OnnxModel(path, spec, name=name).for_bands(available)
