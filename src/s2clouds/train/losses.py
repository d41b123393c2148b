"""Class-weighted cross-entropy plus soft Dice, both ignoring label 255."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s2clouds.labels import NODATA


def class_weights_from_counts(counts: Sequence[int], power: float = 0.5) -> np.ndarray:
    """Per-class weights (K,) float32 from pixel counts: ``(total / count) ** power``,
    scaled to mean 1 over the classes present; absent classes get weight 1."""
    arr = np.asarray(counts, dtype=np.float64)
    present = arr > 0
    weights = np.ones_like(arr)
    if present.any():
        weights[present] = (arr.sum() / arr[present]) ** power
        weights[present] /= weights[present].mean()
    return weights.astype(np.float32)


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = NODATA, smooth: float = 1.0
) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in ``target`` (ignored pixels left out).

    ``logits`` (N, K, H, W) float; ``target`` (N, H, W) int64. Scalar tensor.
    """
    n_classes = logits.shape[1]
    keep = target != ignore_index
    probs = torch.softmax(logits, dim=1) * keep.unsqueeze(1)
    onehot = F.one_hot(torch.where(keep, target, 0), n_classes).permute(0, 3, 1, 2)
    onehot = onehot.to(probs.dtype) * keep.unsqueeze(1)
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    cardinality = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + smooth) / (cardinality + smooth)
    present = onehot.sum(dims) > 0
    if not present.any():
        return logits.sum() * 0.0
    return 1.0 - dice[present].mean()


class CrossEntropyDiceLoss(nn.Module):
    """``CE(weights) + dice_weight * Dice`` with ``ignore_index`` left out of both.

    ``class_weights``: (K,) per-class CE weights (e.g. :func:`class_weights_from_counts`).
    A batch with every pixel ignored gives 0 (with a gradient path), never NaN.
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        *,
        ignore_index: int = NODATA,
        dice_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.class_weights: torch.Tensor | None
        weight = None if class_weights is None else torch.as_tensor(class_weights).float()
        self.register_buffer("class_weights", weight)
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (target != self.ignore_index).any():
            return logits.sum() * 0.0
        ce = F.cross_entropy(
            logits, target, weight=self.class_weights, ignore_index=self.ignore_index
        )
        if self.dice_weight == 0:
            return ce
        return ce + self.dice_weight * soft_dice_loss(logits, target, self.ignore_index)
