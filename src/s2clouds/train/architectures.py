"""Network architectures by name, and loading CloudSEN12's published UnetMobV2 checkpoints.

Every network maps normalised reflectance (N, C, H, W) float32 to class logits
(N, 4, H, W) (clear, thick cloud, thin cloud, cloud shadow); H and W must be multiples of the
architecture's ``size_multiple``.

* ``unet-mobilenetv2``: ``segmentation_models_pytorch.Unet("mobilenet_v2")``, the CloudSEN12
  UnetMobV2 architecture (Aybar et al. 2022), randomly initialised (no weights are
  downloaded).
* ``tiny-unet``: a small U-Net of our own (:class:`TinyUNet`: 3 levels of 16-32-64
  channels, depthwise-separable convolutions, no convolution at full resolution) meant for
  fast CPU inference through onnxruntime.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2clouds._optional import require
from s2clouds.errors import ModelError
from s2clouds.io.write import atomic_path
from s2clouds.models.base import N_CLASSES
from s2clouds.models.weights import WeightSpec
from s2clouds.registry import Registry


@dataclass(frozen=True)
class Architecture:
    """A network family: ``build(in_channels)`` -> logits model, and its input constraints.

    ``size_multiple``: input H and W must be multiples of it (2 ** downsamplings).
    ``halo``: pixels of context worth reading around a tile at inference (about half the
    effective receptive field). ``tile_size``: default inference tile edge (px), as large as
    memory allows (fewer overlapping tiles; ~1 GB of activations or less).
    """

    name: str
    build: Callable[[int], nn.Module]
    size_multiple: int
    halo: int
    tile_size: int
    description: str


# ------------------------------------------------------------------------------ tiny-unet
def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3 x 3 convolution, batch norm, ReLU (full-resolution stem)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


def separable_block(c_in: int, c_out: int) -> nn.Sequential:
    """Depthwise 3 x 3 then pointwise 1 x 1 convolution, each with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    )


class TinyUNet(nn.Module):
    """A small U-Net for fast CPU inference: 3 levels of 16, 32, 64 channels below a
    space-to-depth stem, plus a 1/16-resolution context block.

    * stem: space-to-depth (2 x 2 pixels -> 4C channels, lossless) and a 3 x 3 convolution to
      16 channels at 1/2 resolution;
    * encoder: max-pool + depthwise-separable blocks to 32 (1/4) and 64 channels (1/8), two
      separable blocks at 1/16 for context;
    * decoder: nearest upsampling, skip connections **added** (LinkNet style, cheaper than
      concatenation), one separable block per level;
    * head: 1 x 1 convolution to 4 classes x 2 x 2 sub-pixels and depth-to-space, so the
      logits are at full resolution while no convolution runs there.

    Input (N, C, H, W) with H and W multiples of 16; output logits (N, 4, H, W).
    """

    def __init__(self, in_channels: int, classes: int = N_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), conv_bn_relu(4 * in_channels, 16))
        self.down1 = separable_block(16, 32)
        self.down2 = separable_block(32, 64)
        self.context = nn.Sequential(separable_block(64, 64), separable_block(64, 64))
        self.up2 = separable_block(64, 32)
        self.up1 = separable_block(32, 16)
        self.up0 = separable_block(16, 16)
        self.head = nn.Sequential(nn.Conv2d(16, classes * 4, 1), nn.PixelShuffle(2))
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.stem(x)  # 16 @ 1/2
        s2 = self.down1(self.pool(s1))  # 32 @ 1/4
        s3 = self.down2(self.pool(s2))  # 64 @ 1/8
        c4 = self.context(self.pool(s3))  # 64 @ 1/16
        u3 = self.up2(self.upsample(c4) + s3)  # 32 @ 1/8
        u2 = self.up1(self.upsample(u3) + s2)  # 16 @ 1/4
        u1 = self.up0(self.upsample(u2) + s1)  # 16 @ 1/2
        logits: torch.Tensor = self.head(u1)  # 4 @ 1
        return logits


def build_tiny_unet(in_channels: int) -> nn.Module:
    return TinyUNet(in_channels)


# ------------------------------------------------------------------------ unet-mobilenetv2
def build_unet_mobilenetv2(in_channels: int) -> nn.Module:
    """CloudSEN12's UnetMobV2: smp ``Unet("mobilenet_v2")``, random init (never downloads)."""
    smp = require(
        "segmentation_models_pytorch", "train", purpose="unet-mobilenetv2", error=ModelError
    )
    model: nn.Module = smp.Unet(
        "mobilenet_v2", encoder_weights=None, in_channels=in_channels, classes=N_CLASSES
    )
    return model


#: the trainable networks by name
ARCHITECTURES: Registry[Architecture] = Registry("architecture")
for _architecture in (
    Architecture(
        "unet-mobilenetv2",
        build_unet_mobilenetv2,
        size_multiple=32,
        halo=64,
        tile_size=1024,
        description="U-Net with a MobileNetV2 encoder (CloudSEN12 UnetMobV2), 6.6 M params",
    ),
    Architecture(
        "tiny-unet",
        build_tiny_unet,
        size_multiple=16,
        halo=32,
        tile_size=2048,
        description="3-level separable U-Net (16-32-64 channels, 20 k params), fast on CPUs",
    ),
):
    ARCHITECTURES.register(_architecture.name, _architecture)


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name`` (:class:`~s2clouds.errors.UnknownNameError` listing
    the known ones)."""
    return ARCHITECTURES[name]


def build_model(name: str, n_bands: int) -> nn.Module:
    """A freshly initialised network ``name`` for ``n_bands`` input channels."""
    if n_bands < 1:
        raise ModelError("a model needs at least one input band")
    return get_architecture(name).build(n_bands)


# ------------------------------------------------------------------ CloudSEN12 checkpoints
#: prefixes that training frameworks put before the network's own parameter names
CHECKPOINT_PREFIXES = ("model.", "net.", "network.", "module.", "unet.")


def strip_prefixes(
    state: Mapping[str, Any], prefixes: Sequence[str] = CHECKPOINT_PREFIXES
) -> dict[str, Any]:
    """Parameter names without framework prefixes (``model.encoder.x`` -> ``encoder.x``);
    repeated prefixes (``module.model.``) are stripped too."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        name = key
        while stripped := next((name[len(p) :] for p in prefixes if name.startswith(p)), None):
            name = stripped
        out[name] = value
    return out


def checkpoint_state_dict(checkpoint: Any, path: Path) -> Mapping[str, Any]:
    """The parameter dict of a Lightning checkpoint (``state_dict`` key) or a bare state dict."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        state: Mapping[str, Any] = checkpoint["state_dict"]
        return state
    if isinstance(checkpoint, Mapping) and all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        return checkpoint
    raise ModelError(
        f"{path} is neither a PyTorch Lightning checkpoint (with a 'state_dict') nor a state "
        "dict of tensors; give the UnetMobV2 .ckpt file published with CloudSEN12"
    )


#: Lightning types that published checkpoints hold besides tensors and plain containers:
#: ``hyper_parameters`` is an ``AttributeDict`` (a dict subclass), loaded as a plain dict.
LIGHTNING_SAFE_GLOBALS: list[Any] = [
    (dict, f"{module}.AttributeDict")
    for module in (
        "pytorch_lightning.utilities.parsing",
        "lightning.pytorch.utilities.parsing",
        "lightning.fabric.utilities.data",
        "lightning_fabric.utilities.data",
    )
]
_UNSUPPORTED_GLOBAL = re.compile(r"\bGLOBAL (\S+)")


def load_checkpoint_file(path: Path, fix: str) -> Any:
    """The contents of a PyTorch checkpoint, loaded as weights only: tensors, plain
    containers and numbers, and :data:`LIGHTNING_SAFE_GLOBALS`, never code.

    Raises :class:`ModelError` for a file that would need other Python objects (a crafted
    or foreign checkpoint), and for a truncated or damaged one (``fix`` says what to do).
    """
    try:
        with torch.serialization.safe_globals(LIGHTNING_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        if found is None:
            raise ModelError(
                f"{path} is not a readable checkpoint (damaged, or not PyTorch); {fix}"
            ) from exc
        raise ModelError(
            f"{path} holds Python objects ({found.group(1)}), not only weights, and loading it "
            "could run code; it is refused. Use a checkpoint from a trusted source"
        ) from exc
    except Exception as exc:  # zip, EOF and storage errors of truncated or garbage files
        raise ModelError(
            f"{path} is not a readable checkpoint (truncated or damaged: {_first_line(exc)}); {fix}"
        ) from exc


def load_cloudsen12_checkpoint(path: str | Path, bands: Sequence[str]) -> nn.Module:
    """CloudSEN12's UnetMobV2 for ``bands`` with the weights of a published checkpoint.

    ``path``: a PyTorch Lightning ``.ckpt`` (parameters under ``state_dict``, names prefixed
    e.g. ``model.``) or a bare state dict. The load is strict: :class:`ModelError` names the
    missing and unexpected parameters (e.g. a checkpoint for another band count).
    Returns the network in eval mode; its input is what the checkpoint was trained on.
    """
    ckpt_path = Path(path)
    if not ckpt_path.is_file():
        raise ModelError(f"checkpoint {ckpt_path} not found; check the path")
    checkpoint = load_checkpoint_file(ckpt_path, "download the checkpoint again")
    state = strip_prefixes(checkpoint_state_dict(checkpoint, ckpt_path))
    model = build_unet_mobilenetv2(len(bands))
    load_strict(model, state, ckpt_path)
    return model.eval()


def is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (``torch.jit.save``; e.g. the CloudSEN12 family's
    ``cloudsen12-s2-l2a-1.0.0.pt``): a zip holding compiled ``code/`` and ``constants.pkl``,
    which ``torch.save`` archives do not."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    has_code = any("/code/" in f"/{name}" for name in names)
    return has_code and any(name.endswith("constants.pkl") for name in names)


class FromProbabilities(nn.Module):
    """The log of a network that outputs class probabilities, so that the softmax every
    export appends gives those probabilities back."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(self.network(x), min=1e-12))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def load_torchscript(path: Path, n_bands: int, size: int) -> nn.Module:
    """A TorchScript network (``torch.jit.load``: compiled TorchScript, no Python pickle and
    so no arbitrary code) checked on a random (1, ``n_bands``, ``size``, ``size``) input.

    It must return per-pixel scores (1, 4, size, size) for the 4 classes of the scheme it
    was trained on; logits, or probabilities (wrapped in :class:`FromProbabilities`).
    :class:`ModelError` says what does not fit (bands, output shape, class count).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            network = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # torch raises RuntimeError and its own types
        raise ModelError(
            f"{path} is a TorchScript archive that torch cannot load ({_first_line(exc)}); "
            "download it again"
        ) from exc
    probe = torch.rand(1, n_bands, size, size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = network(probe)
    except Exception as exc:
        raise ModelError(
            f"{path}: the TorchScript network does not run on {n_bands} bands "
            f"({_first_line(exc)}); give bands= as many and in the order it was trained on"
        ) from exc
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.ndim != 4 or tuple(out.shape[2:]) != (size, size):
        raise ModelError(
            f"{path}: the TorchScript network returns {shape}, not per-pixel class scores "
            f"(1, K, {size}, {size}); only segmentation networks can be exported"
        )
    if out.shape[1] != N_CLASSES:
        raise ModelError(
            f"{path}: the TorchScript network scores {out.shape[1]} classes per pixel; "
            f"s2clouds exports networks with {N_CLASSES} (clear, thick cloud, thin cloud, "
            "shadow, in the order of scheme=)"
        )
    sums = out.sum(dim=1)
    if out.min() >= 0 and out.max() <= 1 and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        return FromProbabilities(network).eval()
    return network


def load_strict(model: nn.Module, state: Mapping[str, Any], source: Path) -> None:
    """Load every parameter of ``model`` from ``state``, or raise :class:`ModelError` naming
    the missing, unexpected and wrongly shaped parameters (nothing is loaded then)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)
    ]
    problems = [
        f"{label} {len(keys)}: {', '.join(keys[:5])}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", reshaped))
        if keys
    ]
    if problems:
        raise ModelError(
            f"{source} does not fit the network ({'; '.join(problems)}); check that the "
            "checkpoint is for the same architecture and number of bands"
        )
    model.load_state_dict(dict(state), strict=True)


# ------------------------------------------------------------------ s2clouds checkpoints
#: format tag of the checkpoints :func:`save_trained` writes
CHECKPOINT_FORMAT = "s2clouds-checkpoint/1"


def save_trained(
    path: Path, model: nn.Module, spec: WeightSpec, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write a trained network with its weight spec (and ``extra`` entries) to ``path``,
    atomically: a crash while saving leaves the previous file whole."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "spec": spec.to_dict(),
        "model_state": model.state_dict(),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_trained(path: Path, fix: str, keys: Sequence[str] = ("spec", "model_state")) -> Any:
    """The dict of a checkpoint written by :func:`save_trained`, loaded as weights only
    (:func:`load_checkpoint_file`); :class:`ModelError` when it is damaged, of another kind,
    or lacks one of ``keys``."""
    if is_torchscript(path):
        raise ModelError(
            f"{path} is a TorchScript model, not an s2clouds training checkpoint; export it "
            "with 's2clouds export' (its bands= in input order, and its licence=)"
        )
    checkpoint = load_checkpoint_file(path, fix)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{path} is not an s2clouds training checkpoint (best.pt / last.pt written by "
            "'s2clouds train'); export a published CloudSEN12 .ckpt with 's2clouds export' "
            "(its bands=, and its licence=)"
        )
    missing = [key for key in keys if key not in checkpoint]
    if missing:
        raise ModelError(f"{path} lacks {', '.join(missing)}; {fix}")
    return checkpoint


def load_trained(path: str | Path) -> tuple[nn.Module, WeightSpec, dict[str, Any]]:
    """The network (eval mode), its spec and the whole checkpoint dict of :func:`save_trained`
    (``best.pt`` or ``last.pt`` of a training run)."""
    ckpt_path = Path(path)
    if not ckpt_path.is_file():
        raise ModelError(f"checkpoint {ckpt_path} not found; check the path")
    checkpoint = read_trained(ckpt_path, "train again, or use the run's other checkpoint")
    spec = WeightSpec.from_dict(checkpoint["spec"])
    model = build_model(spec.architecture, len(spec.bands))
    load_strict(model, checkpoint["model_state"], ckpt_path)
    return model.eval(), spec, checkpoint
