"""CD-FCNN (López-Puigdollers, Mateo-García, Gómez-Chova 2021) as built-in peer models.

"Benchmarking Deep Learning models for Cloud Detection in Landsat-8 and Sentinel-2 images",
Remote Sensing 13(5), 992, 2021: a small U-Net of separable convolutions (about 97 k
parameters) trained on Landsat-8 Biome with human labels and applied to Sentinel-2 L1C TOA
reflectance. CloudSEN12 stores its masks as ``cd_fcnn_rgbi`` and ``cd_fcnn_rgbi_swir``.

The published Keras HDF5 weights (IPL-UV/DL-L8S2-UV, MIT licence) were converted once to
ONNX with :mod:`s2clouds.models.keras_port` (``scripts/export_cdfcnn.py``) and ship in
``models/weights/cdfcnn/`` with their specs and the MIT licence text; they run on
onnxruntime as :class:`~s2clouds.models.onnx_model.OnnxModel`.

Operating point, as the paper's Sentinel-2 command: the bands at 30 m (here block means of
the 10 m or 20 m input; the paper resamples with a cubic spline), padded to a multiple of 8,
cloud where the sigmoid output p >= 0.5, interpolated back to the input grid. The graph
writes p as canonical probabilities (thick cloud p, clear 1 - p, no thin cloud, no shadow).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2clouds.errors import ModelError
from s2clouds.models.coarse import NATIVE_SUFFIX
from s2clouds.models.onnx_model import OnnxModel, set_embedded_spec
from s2clouds.models.weights import WeightSpec, read_sidecar, sha256_file, write_sidecar

#: folder of the shipped CD-FCNN ONNX files, their specs and LICENSE
CDFCNN_DIR = Path(__file__).parent / "weights" / "cdfcnn"
CDFCNN_RESOLUTION = 30.0  # metres: the paper's Sentinel-2 default (--resolution 30)
CDFCNN_MULTIPLE = 8  # the paper pads its input to a multiple of 8
CDFCNN_TILE = 1024  # the paper's patch size (px)
#: largest |onnxruntime - numpy| cloud probability accepted for a conversion
CONVERSION_TOLERANCE = 1e-5
SOURCE = "IPL-UV/DL-L8S2-UV, commit 05c91ab118e5 (weights added in 51479c59), dl_l8s2_uv/weights/"
PAPER = (
    "López-Puigdollers, Mateo-García, Gómez-Chova, 'Benchmarking Deep Learning models for "
    "Cloud Detection in Landsat-8 and Sentinel-2 images', Remote Sensing 13(5), 992, 2021"
)


@dataclass(frozen=True)
class CdFcnnVariant:
    """One published CD-FCNN network: its s2clouds ``name``, the Keras ``hdf5`` file it
    was converted from (and that file's ``sha256``), and its input ``bands`` in order."""

    name: str
    hdf5: str
    sha256: str
    bands: tuple[str, ...]

    @property
    def onnx_path(self) -> Path:
        return CDFCNN_DIR / f"{self.name}.onnx"


VARIANTS: dict[str, CdFcnnVariant] = {
    v.name: v
    for v in (
        CdFcnnVariant(
            "cd-fcnn",
            "landsatbiomeRGBISWIR7.hdf5",
            "ed8cf5ea52353fd4712010e2c0af3bf638b35b7dfd3b4d9297a76f85b43d97a1",
            ("B02", "B03", "B04", "B08", "B11", "B12"),
        ),
        CdFcnnVariant(
            "cd-fcnn-rgbi",
            "landsatbiomeRGBI6.hdf5",
            "6ca3a18f5d8e916a41853961beb74de860af6ca369e0a824f68d63c745a4bf16",
            ("B02", "B03", "B04", "B08"),
        ),
    )
}


def cdfcnn_spec(variant: CdFcnnVariant, radius: int) -> WeightSpec:
    """The weight spec of a converted CD-FCNN network whose receptive field reaches
    ``radius`` px (at 30 m). Its normalisation is a layer of the network, so ``mean`` and
    ``std`` are 0 and 1."""
    n = len(variant.bands)
    return WeightSpec(
        name=variant.name,
        architecture="cd-fcnn (separable-convolution U-Net, Keras, converted to ONNX)",
        bands=variant.bands,
        mean=(0.0,) * n,
        std=(1.0,) * n,
        resolution=CDFCNN_RESOLUTION,
        tile_size=CDFCNN_TILE,
        size_multiple=CDFCNN_MULTIPLE,
        halo=radius,
        receptive_field=radius,
        training_data=(
            "Landsat-8 Biome cloud cover assessment (human labels), by the authors of "
            f"{PAPER}; applied to Sentinel-2 L1C TOA reflectance (DN / 10000) in the paper"
        ),
        licence="MIT (weights: Copyright (c) 2021 Image Processing Lab, Universidad de Valencia)",
        notes=(
            f"converted from {variant.hdf5} (sha256 {variant.sha256}) of {SOURCE} with "
            "s2clouds.models.keras_port; the MIT licence text is LICENSE beside this file",
            "one sigmoid output p: thick cloud = p, clear = 1 - p; no thin cloud, no shadow",
            "run at 30 m: block means of the input, probabilities interpolated back",
        ),
    )


@dataclass(frozen=True)
class ConversionResult:
    """A converted network: the ``.onnx`` and spec paths, the largest |onnxruntime - numpy|
    cloud probability on the check image, and the receptive radius (px) from its layers."""

    onnx_path: Path
    spec_path: Path
    max_abs_diff: float
    receptive_radius: int


def check_image(channels: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """(C, size, size) float32 TOA-like reflectance: dark noisy land with a bright cloud
    block and a softer haze block, so that the sigmoid is not saturated everywhere."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.02, 0.2, (channels, size, size)).astype(np.float32)
    q = size // 4
    image[:, q : 2 * q, q : 3 * q] = rng.uniform(0.4, 0.7, (channels, q, 2 * q))
    image[:, 2 * q : 3 * q, : 2 * q] += 0.15
    return image


def convert_cdfcnn(hdf5: str | Path, name: str, out_dir: str | Path) -> ConversionResult:
    """Convert the published Keras file ``hdf5`` of CD-FCNN variant ``name`` to
    ``<out_dir>/<name>.onnx`` with its spec ``<name>.json`` (the receptive radius, from
    the layers, recorded as the spec's ``receptive_field`` and ``halo``).

    The file's sha256 must be the published one; the ONNX graph is checked against the
    numpy forward pass of the Keras graph (:class:`ModelError` beyond
    :data:`CONVERSION_TOLERANCE`). Needs h5py and onnx.
    """
    import onnx

    from s2clouds.models.keras_port import (
        keras_forward,
        keras_onnx_graph,
        read_keras_hdf5,
        receptive_radius,
    )

    variant = VARIANTS[name]
    source, out = Path(hdf5), Path(out_dir) / f"{name}.onnx"
    actual = sha256_file(source)
    if actual != variant.sha256:
        raise ModelError(
            f"{source} has sha256 {actual[:12]}..., not that of the published {variant.hdf5} "
            f"({variant.sha256[:12]}...); use the file of {SOURCE}"
        )
    graph = read_keras_hdf5(source)
    model = keras_onnx_graph(graph)
    radius = receptive_radius(graph)
    spec = cdfcnn_spec(variant, radius)
    set_embedded_spec(model, spec)
    image = check_image(graph.channels)
    expected = keras_forward(graph, image)[0]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        draft = Path(tmp) / out.name
        onnx.save(model, str(draft))
        probe = OnnxModel(draft, spec.replace(sha256=sha256_file(draft)), threads=1)
        diff = float(np.abs(probe.network_probabilities(image)[1] - expected).max())
        if diff > CONVERSION_TOLERANCE:
            raise ModelError(
                f"the ONNX graph of {source.name} differs from the Keras graph by {diff:.2e} "
                f"in cloud probability (tolerance {CONVERSION_TOLERANCE:g})"
            )
        draft.replace(out)
    return ConversionResult(out, write_sidecar(spec, out), diff, radius)


@functools.cache
def shipped_spec(name: str) -> WeightSpec:
    """The spec of the shipped network ``name`` (read once)."""
    return read_sidecar(VARIANTS[name].onnx_path)


def cdfcnn_model(name: str, available: Sequence[str], *, native: bool = False) -> OnnxModel:
    """The shipped CD-FCNN network ``name`` for a scene with ``available`` bands; at 30 m
    on block means, or with ``native`` at the input's resolution. Reports the registry
    name (``name``, or ``name@native``)."""
    variant = VARIANTS[name]
    spec = shipped_spec(name)
    reported = f"{name}{NATIVE_SUFFIX}" if native else name
    return OnnxModel(variant.onnx_path, spec, name=reported, native=native).for_bands(available)
