"""Keras HDF5 models (architecture + weights) read with h5py and rebuilt as ONNX graphs.

No TensorFlow is needed: the layer graph comes from the file's ``model_config`` attribute,
the weights from its ``model_weights`` group. The layers that published cloud U-Nets such as
CD-FCNN (López-Puigdollers et al. 2021) use are supported: ``InputLayer``, ``Conv2D``,
``SeparableConv2D``, ``BatchNormalization``, ``Activation``, ``MaxPooling2D``,
``Conv2DTranspose`` and ``Concatenate``; anything else is refused with :class:`ModelError`.

Two back ends read the same :class:`KerasGraph`:

* :func:`keras_forward`: a plain numpy forward pass (float64), the reference the export is
  checked against;
* :func:`keras_onnx_graph`: the ONNX graph (NCHW) built with the ``onnx`` helper API, input
  (N, C, H, W) float32 and output the sigmoid of the network's last layer (N, 1, H, W).

``h5py`` reads the file (``pip install "s2clouds[peers]"``); ``onnx`` builds the graph
(``pip install "s2clouds[train]"``). Running an exported graph needs only onnxruntime.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds._optional import install_hint, require
from s2clouds.errors import ModelError

KERAS_INSTALL_HINT = f"{install_hint('peers')} (h5py reads Keras HDF5 files)"
#: Keras activations and the ONNX op of each ("linear": none)
ACTIVATIONS = {"linear": None, "relu": "Relu", "sigmoid": "Sigmoid"}
#: the one channel axis of a channels-last Keras tensor, as Keras writes it
CHANNEL_AXES = (3, -1)


@dataclass(frozen=True)
class KerasLayer:
    """One layer of a Keras functional model: ``kind`` (its class name), ``name``, its
    ``config`` dict, the names of the layers it reads (``inputs``) and its weights by their
    Keras name (``"kernel"``, ``"depthwise_kernel"``, ``"gamma"``, ...)."""

    kind: str
    name: str
    config: Mapping[str, Any]
    inputs: tuple[str, ...]
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class KerasGraph:
    """A Keras functional model: ``layers`` in the file's (topological) order, the input
    layer and output layer names, and the number of input channels."""

    name: str
    layers: tuple[KerasLayer, ...]
    input_name: str
    output_name: str
    channels: int


def _import_h5py() -> Any:
    return require("h5py", "peers", purpose="reading Keras HDF5 files", error=ModelError)


def read_keras_hdf5(path: str | Path) -> KerasGraph:
    """The layer graph and weights of a Keras HDF5 model file (``model.save(...)`` format).

    Raises :class:`ModelError` when the file is not a Keras model with its architecture, or
    holds a layer or layer option this reader does not rebuild.
    """
    h5py = _import_h5py()
    source = Path(path)
    try:
        handle = h5py.File(source, "r")
    except OSError as exc:
        raise ModelError(f"{source} is not a readable HDF5 file ({exc})") from exc
    with handle:
        if "model_config" not in handle.attrs or "model_weights" not in handle:
            raise ModelError(
                f"{source} holds no Keras model architecture ('model_config') and weights; "
                "save the model with model.save(...) (weights-only files cannot be rebuilt)"
            )
        config = json.loads(_text(handle.attrs["model_config"]))
        weights = handle["model_weights"]
        body = config.get("config", {})
        layers = tuple(_layer(entry, weights) for entry in body.get("layers", []))
    inputs, outputs = body.get("input_layers", []), body.get("output_layers", [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{source}: only models with one input and one output are rebuilt")
    first = next(layer for layer in layers if layer.name == inputs[0][0])
    shape = first.config.get("batch_input_shape") or [None, None, None, None]
    for layer in layers:
        _check_supported(layer, source)
    return KerasGraph(
        name=str(body.get("name", source.stem)),
        layers=layers,
        input_name=inputs[0][0],
        output_name=outputs[0][0],
        channels=int(shape[-1]),
    )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _layer(entry: Mapping[str, Any], weights: Any) -> KerasLayer:
    """One :class:`KerasLayer` from its ``model_config`` entry and the weights group."""
    name = str(entry["name"])
    nodes = entry.get("inbound_nodes") or []
    inputs = tuple(str(inbound[0]) for inbound in nodes[0]) if nodes else ()
    arrays: dict[str, np.ndarray] = {}
    if name in weights:
        group = weights[name]
        for weight_name in group.attrs.get("weight_names", []):
            key = _text(weight_name)
            short = key.rsplit("/", 1)[-1].split(":", 1)[0]  # "input_conv_1/bias:0" -> "bias"
            arrays[short] = np.asarray(group[key], dtype=np.float32)
    return KerasLayer(str(entry["class_name"]), name, entry.get("config", {}), inputs, arrays)


def _check_supported(layer: KerasLayer, source: Path) -> None:
    """Refuse a layer (or an option of it) that :func:`keras_forward` and
    :func:`keras_onnx_graph` do not rebuild exactly."""
    config = layer.config

    def refuse(what: str) -> ModelError:
        return ModelError(f"{source}: layer {layer.name!r} ({layer.kind}) {what}; not supported")

    if layer.kind not in BUILDERS:
        raise refuse("is of a kind this reader does not rebuild")
    if config.get("data_format", "channels_last") != "channels_last":
        raise refuse("is channels_first")
    if layer.kind in ("Conv2D", "SeparableConv2D", "Conv2DTranspose"):
        if tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
            raise refuse("is dilated")
        if config.get("activation", "linear") not in ACTIVATIONS:
            raise refuse(f"has the activation {config.get('activation')!r}")
        kernel = tuple(config["kernel_size"])
        strides = tuple(config.get("strides", (1, 1)))
        if layer.kind == "Conv2DTranspose":
            if kernel != strides or config.get("output_padding") is not None:
                raise refuse("overlaps its outputs (kernel != strides) or pads them")
        elif strides != (1, 1) or (config.get("padding") == "same" and kernel[0] % 2 == 0):
            raise refuse("is strided or pads an even kernel")
        if layer.kind == "SeparableConv2D" and config.get("depth_multiplier", 1) != 1:
            raise refuse("has a depth multiplier")
    if layer.kind == "Activation" and config.get("activation") not in ACTIVATIONS:
        raise refuse(f"has the activation {config.get('activation')!r}")
    if layer.kind == "MaxPooling2D":
        pool, strides = (
            tuple(config["pool_size"]),
            tuple(config.get("strides") or config["pool_size"]),
        )
        if pool != strides or config.get("padding", "valid") != "valid":
            raise refuse("overlaps its windows or pads")
    if layer.kind == "Concatenate" and config.get("axis", -1) not in CHANNEL_AXES:
        raise refuse("concatenates along another axis than the channels")
    if layer.kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axes = tuple(axis) if isinstance(axis, list) else (axis,)
        if (
            axes not in ((3,), (-1,))
            or not config.get("center", True)
            or not config.get("scale", True)
        ):
            raise refuse("normalises another axis or lacks its scale or centre")


# --------------------------------------------------------------------------- numpy reference
def keras_forward(graph: KerasGraph, image: np.ndarray) -> np.ndarray:
    """The network's output (K, H, W) float64 for one input ``image`` (C, H, W), computed
    with numpy in float64, layer by layer as Keras defines them (the reference for exports;
    H and W multiples of the network's pooling)."""
    if image.ndim != 3 or image.shape[0] != graph.channels:
        raise ModelError(
            f"{graph.name} reads {graph.channels} channels as (C, H, W); got {image.shape}"
        )
    values: dict[str, np.ndarray] = {}
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            values[layer.name] = image.astype(np.float64)
            continue
        values[layer.name] = FORWARD[layer.kind](layer, [values[n] for n in layer.inputs])
    return values[graph.output_name]


def _activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0.0)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    return x


def _zero_padded(x: np.ndarray, kernel: int, padding: str) -> np.ndarray:
    """``x`` (C, H, W) zero-padded by (kernel - 1) / 2 on every side for Keras ``"same"``."""
    if padding != "same" or kernel == 1:
        return x
    r = (kernel - 1) // 2
    return np.pad(x, ((0, 0), (r, r), (r, r)))


def _conv(x: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """Keras cross-correlation of ``x`` (C, H, W) with ``kernel`` (kh, kw, C, O)."""
    kh, kw = kernel.shape[:2]
    padded = _zero_padded(x, kh, padding)
    h, w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = np.zeros((kernel.shape[3], h, w))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("chw,co->ohw", padded[:, i : i + h, j : j + w], kernel[i, j])
    return out


def _depthwise(x: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """Keras depthwise cross-correlation of ``x`` (C, H, W) with ``kernel`` (kh, kw, C, 1)."""
    kh, kw = kernel.shape[:2]
    padded = _zero_padded(x, kh, padding)
    h, w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = np.zeros((x.shape[0], h, w))
    for i in range(kh):
        for j in range(kw):
            out += padded[:, i : i + h, j : j + w] * kernel[i, j, :, 0][:, None, None]
    return out


def _forward_conv(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    w = layer.weights
    out = _conv(inputs[0], w["kernel"].astype(np.float64), layer.config.get("padding", "valid"))
    if "bias" in w:
        out += w["bias"][:, None, None]
    return _activate(out, layer.config.get("activation", "linear"))


def _forward_separable(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    w = layer.weights
    padding = layer.config.get("padding", "valid")
    depth = _depthwise(inputs[0], w["depthwise_kernel"].astype(np.float64), padding)
    out = _conv(depth, w["pointwise_kernel"].astype(np.float64), "valid")
    if "bias" in w:
        out += w["bias"][:, None, None]
    return _activate(out, layer.config.get("activation", "linear"))


def _forward_batchnorm(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    w = {k: v.astype(np.float64)[:, None, None] for k, v in layer.weights.items()}
    epsilon = float(layer.config.get("epsilon", 1e-3))
    scale = w["gamma"] / np.sqrt(w["moving_variance"] + epsilon)
    return (inputs[0] - w["moving_mean"]) * scale + w["beta"]


def _forward_maxpool(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    ph, pw = layer.config["pool_size"]
    c, h, w = x.shape
    cropped = x[:, : h // ph * ph, : w // pw * pw]
    return cropped.reshape(c, h // ph, ph, w // pw, pw).max(axis=(2, 4))


def _forward_transpose(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    """Transposed convolution whose kernel equals its stride: each input pixel spreads to a
    (kh, kw) output block, ``out[o, kh i + a, kw j + b] = sum_c x[c, i, j] K[a, b, o, c]``."""
    x, kernel = inputs[0], layer.weights["kernel"].astype(np.float64)  # (kh, kw, O, C)
    kh, kw, n_out, _ = kernel.shape
    _, h, w = x.shape
    out = np.einsum("chw,aboc->ohawb", x, kernel).reshape(n_out, h * kh, w * kw)
    if "bias" in layer.weights:
        out += layer.weights["bias"][:, None, None]
    return _activate(out, layer.config.get("activation", "linear"))


def _forward_activation(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    return _activate(inputs[0], layer.config["activation"])


def _forward_concat(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(inputs, axis=0)


FORWARD: dict[str, Callable[[KerasLayer, list[np.ndarray]], np.ndarray]] = {
    "Conv2D": _forward_conv,
    "SeparableConv2D": _forward_separable,
    "BatchNormalization": _forward_batchnorm,
    "MaxPooling2D": _forward_maxpool,
    "Conv2DTranspose": _forward_transpose,
    "Activation": _forward_activation,
    "Concatenate": _forward_concat,
}


def receptive_radius(graph: KerasGraph) -> int:
    """An upper bound on the radius (input pixels, Chebyshev) of the network's receptive
    field, from its layers: a k x k convolution adds (k - 1) / 2 pixels of the grid it runs
    on, a p x p pooling adds p - 1 of them (its window's extent) and makes the grid p times
    coarser, a transposed convolution adds the k - 1 positions of its output block."""
    reach: dict[str, tuple[int, int]] = {}  # layer -> (radius in input px, grid step in px)
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            reach[layer.name] = (0, 1)
            continue
        radius = max(reach[n][0] for n in layer.inputs)
        step = reach[layer.inputs[0]][1]
        if layer.kind in ("Conv2D", "SeparableConv2D"):
            radius += (int(layer.config["kernel_size"][0]) - 1) // 2 * step
        elif layer.kind == "MaxPooling2D":
            pool = int(layer.config["pool_size"][0])
            radius, step = radius + (pool - 1) * step, step * pool
        elif layer.kind == "Conv2DTranspose":
            kernel = int(layer.config["kernel_size"][0])
            step //= kernel
            radius += (kernel - 1) * step
        reach[layer.name] = (radius, step)
    return reach[graph.output_name][0]


# --------------------------------------------------------------------------------- ONNX graph
class _OnnxBuilder:
    """Collects the nodes and initialisers of an ONNX graph (names derived from layer names)."""

    def __init__(self) -> None:
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.numpy_helper = onnx, helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(
            self.numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name)
        )
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, **attributes: Any) -> str:
        self.nodes.append(
            self.helper.make_node(op, list(inputs), [output], name=output, **attributes)
        )
        return output

    def activation(self, x: str, activation: str, name: str) -> str:
        op = ACTIVATIONS[activation]
        return x if op is None else self.node(op, [x], f"{name}/{activation}")


def _same_pads(layer: KerasLayer) -> list[int]:
    kernel = int(layer.config["kernel_size"][0])
    r = (kernel - 1) // 2 if layer.config.get("padding") == "same" else 0
    return [r, r, r, r]


def _onnx_conv(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    w = layer.weights
    args = [inputs[0], b.constant(f"{layer.name}/W", w["kernel"].transpose(3, 2, 0, 1))]
    if "bias" in w:
        args.append(b.constant(f"{layer.name}/B", w["bias"]))
    out = b.node("Conv", args, f"{layer.name}/conv", pads=_same_pads(layer))
    return b.activation(out, layer.config.get("activation", "linear"), layer.name)


def _onnx_separable(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    w = layer.weights
    depthwise = w["depthwise_kernel"].transpose(2, 3, 0, 1)  # (C, 1, kh, kw)
    channels = depthwise.shape[0]
    depth = b.node(
        "Conv",
        [inputs[0], b.constant(f"{layer.name}/depthwise", depthwise)],
        f"{layer.name}/depthwise_conv",
        pads=_same_pads(layer),
        group=channels,
    )
    args = [
        depth,
        b.constant(f"{layer.name}/pointwise", w["pointwise_kernel"].transpose(3, 2, 0, 1)),
    ]
    if "bias" in w:
        args.append(b.constant(f"{layer.name}/B", w["bias"]))
    out = b.node("Conv", args, f"{layer.name}/pointwise_conv")
    return b.activation(out, layer.config.get("activation", "linear"), layer.name)


def _onnx_batchnorm(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    w = layer.weights
    args = [inputs[0]] + [
        b.constant(f"{layer.name}/{key}", w[key])
        for key in ("gamma", "beta", "moving_mean", "moving_variance")
    ]
    epsilon = float(layer.config.get("epsilon", 1e-3))
    return b.node("BatchNormalization", args, f"{layer.name}/bn", epsilon=epsilon)


def _onnx_maxpool(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    pool = [int(v) for v in layer.config["pool_size"]]
    return b.node("MaxPool", inputs, f"{layer.name}/pool", kernel_shape=pool, strides=pool)


def _onnx_transpose(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    w = layer.weights
    kernel = [int(v) for v in layer.config["kernel_size"]]
    args = [inputs[0], b.constant(f"{layer.name}/W", w["kernel"].transpose(3, 2, 0, 1))]
    if "bias" in w:
        args.append(b.constant(f"{layer.name}/B", w["bias"]))
    out = b.node("ConvTranspose", args, f"{layer.name}/upconv", kernel_shape=kernel, strides=kernel)
    return b.activation(out, layer.config.get("activation", "linear"), layer.name)


def _onnx_activation(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    return b.activation(inputs[0], layer.config["activation"], layer.name)


def _onnx_concat(b: _OnnxBuilder, layer: KerasLayer, inputs: list[str]) -> str:
    return b.node("Concat", inputs, f"{layer.name}/concat", axis=1)


BUILDERS: dict[str, Callable[[_OnnxBuilder, KerasLayer, list[str]], str]] = {
    "InputLayer": lambda b, layer, inputs: layer.name,
    "Conv2D": _onnx_conv,
    "SeparableConv2D": _onnx_separable,
    "BatchNormalization": _onnx_batchnorm,
    "MaxPooling2D": _onnx_maxpool,
    "Conv2DTranspose": _onnx_transpose,
    "Activation": _onnx_activation,
    "Concatenate": _onnx_concat,
}

#: opset of the written graphs (onnxruntime 1.17, the oldest s2clouds supports, runs 20)
ONNX_OPSET = 17
#: IR version written, fixed so that a re-export gives the same bytes whatever onnx wrote
ONNX_IR_VERSION = 8


def keras_onnx_graph(
    graph: KerasGraph,
    *,
    input_name: str = "input",
    output_name: str = "probabilities",
    canonical_binary: bool = True,
) -> Any:
    """The ONNX ``ModelProto`` of ``graph`` (NCHW; batch, height and width dynamic).

    Input ``input_name`` (N, C, H, W) float32. With ``canonical_binary`` the network's one
    sigmoid output ``p`` is written as the canonical probabilities (N, 4, H, W): clear
    ``1 - p``, thick cloud ``p``, thin cloud and shadow 0; otherwise the raw (N, K, H, W).
    """
    b = _OnnxBuilder()
    names: dict[str, str] = {}
    for layer in graph.layers:
        names[layer.name] = BUILDERS[layer.kind](b, layer, [names[n] for n in layer.inputs])
    out = names[graph.output_name]
    channels = 4 if canonical_binary else None
    if canonical_binary:
        one = b.constant("one", np.ones((1, 1, 1, 1), np.float32))
        zero = b.constant("zero", np.zeros((1, 1, 1, 1), np.float32))
        clear = b.node("Sub", [one, out], "clear")
        empty = b.node("Mul", [out, zero], "empty")
        out = b.node("Concat", [clear, out, empty, empty], output_name, axis=1)
    else:
        out = b.node("Identity", [out], output_name)
    helper, tensor = b.helper, b.onnx.TensorProto.FLOAT
    model_input = helper.make_tensor_value_info(
        graph.input_name, tensor, ["batch", graph.channels, "height", "width"]
    )
    model_output = helper.make_tensor_value_info(
        output_name, tensor, ["batch", channels, "height", "width"]
    )
    onnx_graph = helper.make_graph(
        b.nodes, graph.name, [model_input], [model_output], b.initializers
    )
    # the Keras input layer's name is the graph input: rename it to ``input_name``
    for node in onnx_graph.node:
        node.input[:] = [input_name if n == graph.input_name else n for n in node.input]
    onnx_graph.input[0].name = input_name
    model = helper.make_model(
        onnx_graph,
        producer_name="s2clouds.models.keras_port",
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
    )
    model.ir_version = ONNX_IR_VERSION
    b.onnx.checker.check_model(model)
    return model
