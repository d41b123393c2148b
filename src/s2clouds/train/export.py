"""Export a trained checkpoint to ONNX with its weight spec, checked against torch.

The exported graph is the network followed by a softmax over classes: input ``input``
(N, C, H, W) float32 normalised reflectance, output ``probabilities`` (N, 4, H, W), with N,
H and W dynamic (H, W multiples of ``spec.size_multiple``). The spec goes into the model's
``metadata_props`` (key ``s2clouds_spec``) and into the sidecar ``<out>.json`` together with
the sha256 of the written ``.onnx``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2clouds.errors import ModelError, OutputError
from s2clouds.io.paths import check_outputs
from s2clouds.labels import CANONICAL_CLASSES, get_scheme
from s2clouds.models.base import N_CLASSES, ModelContext
from s2clouds.models.onnx_model import OnnxModel, set_embedded_spec
from s2clouds.models.weights import (
    WeightSpec,
    read_sidecar,
    sha256_file,
    sidecar_path,
    write_sidecar,
)
from s2clouds.train.architectures import (
    get_architecture,
    is_torchscript,
    load_cloudsen12_checkpoint,
    load_torchscript,
    load_trained,
)

INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
#: largest |onnxruntime - torch| probability difference accepted for an fp32 export
EXPORT_TOLERANCE = 1e-4


class WithSoftmax(nn.Module):
    """``softmax(network(x))`` over the class axis, written out so that onnxruntime runs it
    as cheap elementwise ops (its ``Softmax`` over axis 1 of NCHW transposes the tensor)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        shifted = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        return shifted / shifted.sum(dim=1, keepdim=True)


class CanonicalOrder(nn.Module):
    """``network(x)`` with its output channels put in canonical class order (``order[c]`` is
    the network's channel of canonical class ``c``)."""

    def __init__(self, network: nn.Module, order: Sequence[int]) -> None:
        super().__init__()
        self.network = network
        self.order = list(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.network(x)
        return logits[:, self.order]


def canonical_order(scheme: str) -> list[int]:
    """For a network whose 4 output channels are the classes 0-3 of ``scheme``, the channel
    of each canonical class; :class:`ModelError` unless they map one to one."""
    to_canonical = get_scheme(scheme).to_canonical
    order = [[i for i in range(N_CLASSES) if to_canonical.get(i) == c] for c in CANONICAL_CLASSES]
    if any(len(channels) != 1 for channels in order):
        raise ModelError(
            f"the classes 0-{N_CLASSES - 1} of scheme {scheme!r} do not map one to one onto "
            "clear, thick cloud, thin cloud, cloud shadow; give the scheme the checkpoint "
            "predicts (CloudSEN12's UnetMobV2: cloudsen12)"
        )
    return [channels[0] for channels in order]


@dataclass(frozen=True)
class PublishedCheckpoint:
    """What a published CloudSEN12 UnetMobV2 checkpoint does not say, given by its user:
    ``bands`` in input order, ``mean``/``std`` normalisation in reflectance units (one per
    band; the published models read reflectance as it is: 0 and 1), the ``scheme`` of its
    output channels, the ``licence`` of the weights, ``resolution`` in metres."""

    bands: tuple[str, ...]
    licence: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scheme: str = "cloudsen12"
    resolution: float = 10.0
    name: str = "unetmobv2"
    training_data: str = "CloudSEN12 (Aybar et al. 2022), as published with the checkpoint"


def load_published(
    checkpoint: str | Path, published: PublishedCheckpoint
) -> tuple[nn.Module, WeightSpec]:
    """The network of a published UnetMobV2 checkpoint (via :func:`load_cloudsen12_checkpoint`)
    or TorchScript file (:func:`load_torchscript`), channels in canonical order, and the spec
    built from ``published``."""
    if not published.licence.strip():
        raise ModelError(
            "say under which licence the checkpoint's weights are published (licence=); "
            "the spec records it",
            param="licence",
        )
    n = len(published.bands)
    mean = published.mean if published.mean is not None else (0.0,) * n
    std = published.std if published.std is not None else (1.0,) * n
    architecture = get_architecture("unet-mobilenetv2")
    path = Path(checkpoint)
    if is_torchscript(path):  # the CloudSEN12 family's .pt files
        network = load_torchscript(path, n, 2 * architecture.size_multiple)
        kind = f"torchscript ({path.name})"
    else:
        network = load_cloudsen12_checkpoint(path, published.bands)
        kind = architecture.name
    model = CanonicalOrder(network, canonical_order(published.scheme)).eval()
    spec = WeightSpec(
        name=published.name,
        architecture=kind,
        bands=published.bands,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        resolution=published.resolution,
        tile_size=architecture.tile_size,
        size_multiple=architecture.size_multiple,
        halo=architecture.halo,
        training_data=published.training_data,
        licence=published.licence,
        notes=(
            f"published checkpoint {Path(checkpoint).name}, output classes as {published.scheme}",
        ),
    )
    return model, spec


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how closely onnxruntime reproduces torch.

    ``max_abs_diff``: max |onnxruntime - torch| probability on a random input (fp32 model);
    ``quantized_max_diff``: max |int8 - fp32| probability when ``quantize`` was asked for.
    """

    onnx_path: Path
    spec_path: Path
    spec: WeightSpec
    max_abs_diff: float
    quantized_max_diff: float | None = None


@contextlib.contextmanager
def native_output_silenced() -> Iterator[None]:
    """Send what native code writes to file descriptors 1 and 2 to /dev/null meanwhile
    (Python's own errors are raised as exceptions and reported by the caller)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def export_graph(model: nn.Module, spec: WeightSpec, path: Path, opset: int) -> None:
    """Trace ``model`` + softmax to ONNX at ``path`` with dynamic batch, height and width
    (scripted instead when it holds a TorchScript network, which tracing cannot enter)."""
    size = 2 * spec.size_multiple
    example = torch.zeros(1, len(spec.bands), size, size)
    axes = {0: "batch", 2: "height", 3: "width"}
    graph: nn.Module = WithSoftmax(model).eval()
    scripted = any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes of the TorchScript exporter
        try:
            if scripted:
                graph = torch.jit.script(graph)  # a loaded TorchScript network is not traceable
            with native_output_silenced():  # the exporter dumps its whole graph on failure
                torch.onnx.export(
                    graph,
                    (example,),
                    str(path),
                    dynamo=False,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                    opset_version=opset,
                )
        except Exception as exc:  # torch's exporter raises RuntimeError and its own types
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:160]
            hint = (
                "a TorchScript model scripted with loops or data-dependent branches cannot be "
                "exported; a traced one (torch.jit.trace) can"
                if scripted
                else "try another opset (opset=)"
            )
            raise ModelError(
                f"torch cannot export this network to ONNX ({reason}); {hint}"
            ) from exc


def embed_spec(path: Path, spec: WeightSpec) -> None:
    """Write ``spec`` (without checksum) into the ONNX model's ``metadata_props``."""
    import onnx

    model = onnx.load(str(path))
    set_embedded_spec(model, spec)
    onnx.save(model, str(path))


def random_reflectance(spec: WeightSpec, size: int, seed: int = 0) -> np.ndarray:
    """(C, size, size) float32 reflectance in 0-0.6 with a few NaN pixels, for checks."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 0.6, (len(spec.bands), size, size)).astype(np.float32)
    image[:, :2, :3] = np.nan
    return image


def torch_probabilities(model: nn.Module, spec: WeightSpec, image: np.ndarray) -> np.ndarray:
    """Probabilities (4, H, W) float32 of the torch ``model`` for reflectance ``image``."""
    model_input = torch.from_numpy(spec.normalise(image)).unsqueeze(0)
    with torch.no_grad():
        probs = WithSoftmax(model).eval()(model_input)
    out: np.ndarray = probs[0].numpy()
    return out


def onnx_probabilities(path: Path, spec: WeightSpec, image: np.ndarray) -> np.ndarray:
    """Probabilities (4, H, W) of the ONNX file at ``path`` (run as an :class:`OnnxModel`)."""
    model = OnnxModel(path, spec.replace(sha256=sha256_file(path)))
    return model.predict_proba(image, ModelContext())


def quantize_int8(fp32_path: Path, out_path: Path) -> None:
    """Dynamic int8 quantisation of the weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8)


def export_onnx(
    checkpoint: str | Path,
    out_path: str | Path,
    *,
    opset: int = 17,
    quantize: bool = False,
    tile_size: int | None = None,
    training_data: str | None = None,
    notes: Sequence[str] = (),
    name: str | None = None,
    licence: str | None = None,
    check_size: int = 96,
    published: PublishedCheckpoint | None = None,
) -> ExportResult:
    """Write ``out_path`` (.onnx) and its spec ``<out>.json`` from a training checkpoint, or
    from a published CloudSEN12 UnetMobV2 checkpoint when ``published`` describes it.

    The fp32 graph is checked against torch on random reflectance of ``check_size`` px
    (:class:`ModelError` when the largest probability difference exceeds
    :data:`EXPORT_TOLERANCE`). With ``quantize`` the written model is the int8 dynamic
    quantisation of it, and ``quantized_max_diff`` reports its largest probability
    difference from fp32 on the same input. ``tile_size`` overrides the inference tile edge
    recorded in the spec; ``training_data`` replaces the training-data description (say
    where the data came from and its licences) and ``notes`` are appended to the spec's notes;
    ``name`` and ``licence`` replace the model name and the weights' licence.
    """
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise OutputError(f"the output {out} must end in .onnx")
    if not out.parent.is_dir():
        raise OutputError(f"output folder {out.parent} does not exist; create it first")
    outputs = {"the model (out_path=)": out, "its spec (out_path=, .json)": sidecar_path(out)}
    check_outputs(outputs, [checkpoint])
    if published is not None:
        model, spec = load_published(checkpoint, published)
    else:
        model, spec, _ = load_trained(checkpoint)
    updates: dict[str, Any] = {"notes": (*spec.notes, *notes)}
    if tile_size is not None:
        updates["tile_size"] = tile_size
    for key, value in (("training_data", training_data), ("name", name), ("licence", licence)):
        if value is not None:
            updates[key] = value
    spec = spec.replace(**updates)
    size = max(check_size, 2 * spec.size_multiple) // spec.size_multiple * spec.size_multiple
    image = random_reflectance(spec, size)
    expected = torch_probabilities(model, spec, image)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_graph(model, spec, fp32, opset)
        embed_spec(fp32, spec)
        fp32_probs = onnx_probabilities(fp32, spec, image)
        max_diff = float(np.abs(fp32_probs - expected).max())
        if max_diff > EXPORT_TOLERANCE:
            raise ModelError(
                f"the exported graph differs from torch by {max_diff:.2e} in probability "
                f"(tolerance {EXPORT_TOLERANCE:g}); try another opset (opset=)"
            )
        quant_diff = None
        if quantize:
            quantized = Path(tmp) / "int8.onnx"
            quantize_int8(fp32, quantized)
            embed_spec(quantized, spec)
            quant_probs = onnx_probabilities(quantized, spec, image)
            quant_diff = float(np.abs(quant_probs - fp32_probs).max())
            fp32 = quantized
        fp32.replace(out)
    spec_path = write_sidecar(spec, out)
    return ExportResult(out, spec_path, read_sidecar(out), max_diff, quant_diff)
