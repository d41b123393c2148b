"""Training of learned cloud models (the only part of s2clouds that imports torch).

Networks need the ``train`` extra (``pip install "s2clouds[train]"``); their submodules load
torch, so they are imported on first use: ``from s2clouds.train import train, export_onnx``.
The LightGBM pixel model needs only ``s2clouds[pixel]``:
``from s2clouds.train import train_pixel_model, fit_scribbles``.

* :mod:`~s2clouds.train.architectures`: networks by name, CloudSEN12 checkpoint loading
* :mod:`~s2clouds.train.augment`: seeded, mask-exact augmentations (numpy)
* :mod:`~s2clouds.train.losses`: class-weighted cross-entropy + Dice with ignore index
* :mod:`~s2clouds.train.data`: samples of any dataset reader as training arrays (numpy)
* :mod:`~s2clouds.train.loop`: :func:`train`, resumable, validated every epoch
* :mod:`~s2clouds.train.export`: :func:`export_onnx` with the weight spec embedded
* :mod:`~s2clouds.train.pseudolabels`: labels where peer maskers agree (numpy, no torch)
* :mod:`~s2clouds.train.pixel`: the LightGBM pixel model, on datasets or scribbles (no torch)
* :mod:`~s2clouds.train.scoring`: validation scores and progress shared by both (no torch)
"""

from __future__ import annotations

import importlib
from typing import Any

from s2clouds._optional import install_hint, require
from s2clouds.errors import ModelError

#: public name -> module that defines it
_EXPORTS = {
    "train": "s2clouds.train.loop",
    "TrainConfig": "s2clouds.train.loop",
    "export_onnx": "s2clouds.train.export",
    "ExportResult": "s2clouds.train.export",
    "ARCHITECTURES": "s2clouds.train.architectures",
    "build_model": "s2clouds.train.architectures",
    "load_cloudsen12_checkpoint": "s2clouds.train.architectures",
    "load_trained": "s2clouds.train.architectures",
    "Augmentation": "s2clouds.train.augment",
    "CrossEntropyDiceLoss": "s2clouds.train.losses",
    "train_pixel_model": "s2clouds.train.pixel",
    "fit_scribbles": "s2clouds.train.pixel",
    "PixelTrainConfig": "s2clouds.train.pixel",
}
#: modules that run without torch
_TORCH_FREE = {"s2clouds.train.pixel"}
TRAIN_INSTALL_HINT = install_hint("train")

__all__ = sorted(_EXPORTS)


def require_torch() -> None:
    """Raise :class:`ModelError` with the install command when torch is missing."""
    require("torch", "train", purpose="training and export", error=ModelError)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 's2clouds.train' has no attribute {name!r}")
    if _EXPORTS[name] not in _TORCH_FREE:
        require_torch()
    return getattr(importlib.import_module(_EXPORTS[name]), name)
