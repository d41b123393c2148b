"""Seeded, reproducible recomposition of a dataset's published splits, and the official
SEN12MS split lists.

The CloudSEN12 card suggests pooling the train/val/test patches and drawing new subsets at the
start of each trial, to avoid a bias from the original selection. :func:`recompose` does that
on ``(split, index)`` pairs only; readers such as ``CloudSEN12.from_index`` then serve the
subsets straight from the original files, so no data is copied.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.errors import DatasetError

SampleRef = tuple[str, int]
_TOLERANCE = 1e-9


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise DatasetError("give at least one subset, e.g. fractions={'train': 0.8, 'test': 0.2}")
    bad = {name: f for name, f in fractions.items() if not (0.0 < f <= 1.0)}
    if bad:
        raise DatasetError(f"subset fractions must lie in (0, 1]; got {bad}")
    total = math.fsum(fractions.values())
    if total > 1.0 + _TOLERANCE:
        raise DatasetError(
            f"subset fractions sum to {total:.6g} > 1; scale them down so that they sum to 1 or less"
        )


def _subset_sizes(total: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Samples per subset: floor of fraction * total, and when the fractions sum to 1 the
    remainder goes to the subsets with the largest fractional parts (so every sample is used).
    """
    exact = {name: f * total for name, f in fractions.items()}
    sizes = {name: math.floor(x) for name, x in exact.items()}
    if abs(math.fsum(fractions.values()) - 1.0) <= _TOLERANCE:
        by_remainder = sorted(exact, key=lambda n: (sizes[n] - exact[n], list(exact).index(n)))
        for name in by_remainder[: total - sum(sizes.values())]:
            sizes[name] += 1
    return sizes


def pooled_index(dataset_sizes: Mapping[str, int]) -> list[SampleRef]:
    """Every ``(split, index)`` pair, splits in sorted name order so dict order does not matter."""
    negative = {s: n for s, n in dataset_sizes.items() if n < 0}
    if negative:
        raise DatasetError(f"split sizes must be >= 0; got {negative}")
    return [(split, i) for split in sorted(dataset_sizes) for i in range(dataset_sizes[split])]


def recompose(
    dataset_sizes: Mapping[str, int], fractions: Mapping[str, float], seed: int
) -> dict[str, list[SampleRef]]:
    """Pool the published splits and draw new disjoint subsets.

    ``dataset_sizes``: patches per published split, e.g. ``{"train": 8490, "val": 535,
    "test": 975}`` (``CloudSEN12.split_sizes(root)`` gives it). ``fractions``: new subset name
    -> fraction of the pooled total; they may sum to less than 1 (the rest is left out). The
    same sizes, fractions and ``seed`` always give the same subsets. Each subset is a list of
    ``(split, index within split)`` pairs sorted by file position (cheap sequential reads;
    shuffle in your data loader).
    """
    _check_fractions(fractions)
    pool = pooled_index(dataset_sizes)
    order = np.random.default_rng(seed).permutation(len(pool))
    subsets: dict[str, list[SampleRef]] = {}
    start = 0
    for name, size in _subset_sizes(len(pool), fractions).items():
        chosen = order[start : start + size]
        subsets[name] = sorted(pool[i] for i in chosen)
        start += size
    return subsets


# --------------------------------------------------------------------------------------------
# The official SEN12MS split lists (github.com/schmitt-muc/SEN12MS, folder ``splits/``)
# --------------------------------------------------------------------------------------------

#: scene lists of the SEN12MS repository: file name -> the split its scenes belong to
#: (every scene in neither list is a training scene)
SCENE_LISTS = {"SEN12MS_holdOutScenes.txt": "test", "ValidationScenes.txt": "val"}
#: patch lists: ``<split>_list.txt`` (or ``.pkl``, also under ``split_lists_pkl/``) name the
#: s2 patch files of each split (``ROIs1158_spring_s2_124_p100.tif``)
PATCH_LIST_SPLITS = ("train", "val", "test")
_SENSOR = r"(?:s1|s2|lc|s2_cloudy)"
_SCENE_LINE = re.compile(rf"^(?P<roi>ROIs\d{{4}}_[a-z]+)/{_SENSOR}_(?P<scene>\d+)$")
_PATCH_NAME = re.compile(
    rf"^(?P<roi>ROIs\d{{4}}_[a-z]+)_{_SENSOR}_(?P<scene>\d+)_p(?P<patch>\d+)(?:\.tif)?$"
)

#: ``(ROI folder, scene)``, e.g. ``("ROIs1158_spring", 63)``; a patch adds its number
SceneId = tuple[str, int]
PatchId = tuple[str, int, int]


@dataclass(frozen=True)
class OfficialSplit:
    """The published SEN12MS split: per-patch lists where the folder has them, else the
    hold-out and validation scene lists (every other scene is ``train``).

    ``patches``: ``{(roi, scene, patch): split}``; ``scenes``: ``{(roi, scene): split}`` of the
    listed scenes; ``source``: the files read (for ``summary``)."""

    patches: Mapping[PatchId, str]
    scenes: Mapping[SceneId, str]
    source: tuple[str, ...]

    def split_of(self, roi: str, scene: int, patch: int) -> str:
        """The split of one patch: its patch list entry, else its scene's list, else train
        (when only scene lists were given) or ``""`` (patch lists given, patch not in them)."""
        if self.patches:
            return self.patches.get((roi, scene, patch), "")
        return self.scenes.get((roi, scene), "train")


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: cannot read the split list ({exc}); download it again"
        ) from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


class _NamesOnly(pickle.Unpickler):
    """Unpickles plain lists / tuples of strings and nothing else (no code is run)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a split list")


def _read_pickled_names(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            names = _NamesOnly(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DatasetError(
            f"{path}: not a pickled list of file names ({exc}); use the .txt lists instead"
        ) from exc
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{path}: expected a list of file names, got {type(names).__name__}")
    return [n.strip() for n in names]


def _patch_list(folder: Path, split: str) -> Path | None:
    """The patch list of ``split`` in ``folder``: ``<split>_list.txt``, else a ``.pkl`` one."""
    for candidate in (
        folder / f"{split}_list.txt",
        folder / f"{split}_list.pkl",
        folder / "split_lists_pkl" / f"{split}_list.pkl",
    ):
        if candidate.is_file():
            return candidate
    return None


def _parse_patch_names(path: Path, names: list[str], split: str) -> dict[PatchId, str]:
    out: dict[PatchId, str] = {}
    for name in names:
        match = _PATCH_NAME.match(Path(name).name)
        if match is None:
            raise DatasetError(
                f"{path}: {name!r} is not a SEN12MS patch name "
                "(ROIs<seed>_<season>_s2_<scene>_p<patch>.tif)"
            )
        out[(match["roi"], int(match["scene"]), int(match["patch"]))] = split
    return out


def _parse_scene_lines(path: Path, split: str) -> dict[SceneId, str]:
    out: dict[SceneId, str] = {}
    for line in _read_lines(path):
        match = _SCENE_LINE.match(line)
        if match is None:
            raise DatasetError(
                f"{path}: line {line!r} is not a SEN12MS scene (ROIs<seed>_<season>/s1_<scene>)"
            )
        out[(match["roi"], int(match["scene"]))] = split
    return out


def read_official_split(folder: Path | str) -> OfficialSplit:
    """Read the SEN12MS split files in ``folder`` (see :class:`OfficialSplit`).

    Accepts the repository's ``splits/`` folder as published: ``SEN12MS_holdOutScenes.txt``
    (test scenes, one ``ROIs1158_spring/s1_63`` per line), ``ValidationScenes.txt`` (val
    scenes) and the patch lists ``train_list``/``val_list``/``test_list`` (``.txt``, or
    ``.pkl`` read without running any pickled code). Raises :class:`DatasetError` when the
    folder holds none of them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"split folder not found: {folder}; give the SEN12MS repository's splits/ folder "
            "(SEN12MS_holdOutScenes.txt and the train/val/test lists)"
        )
    patches: dict[PatchId, str] = {}
    scenes: dict[SceneId, str] = {}
    source: list[str] = []
    for split in PATCH_LIST_SPLITS:
        path = _patch_list(folder, split)
        if path is None:
            continue
        names = _read_pickled_names(path) if path.suffix == ".pkl" else _read_lines(path)
        patches.update(_parse_patch_names(path, names, split))
        source.append(path.name)
    for name, split in SCENE_LISTS.items():
        if (folder / name).is_file():
            scenes.update(_parse_scene_lines(folder / name, split))
            source.append(name)
    if not source:
        raise DatasetError(
            f"{folder} holds none of {', '.join(SCENE_LISTS)} or {{train,val,test}}_list.txt; "
            "give the SEN12MS repository's splits/ folder"
        )
    return OfficialSplit(patches, scenes, tuple(source))
