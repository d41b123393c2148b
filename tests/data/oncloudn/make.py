"""Write a tiny On Cloud N tree in the competition's layout (``OnCloudN``' format).

``train_features/<chip_id>/{B02,B03,B04,B08}.tif`` (single-band uint16 L2A DN, 10 m UTM, nodata
0), ``train_labels/<chip_id>.tif`` (uint8, 0 not cloud, 1 cloud) and ``train_metadata.csv``
(``chip_id,location,datetime,cloudpath``); chips are ``SIZE`` px square instead of 512. One
chip (:data:`UNLABELLED`) has features but no label (left out).

Usage: ``write(root)`` returns ``{chip_id: {"B02": DN, ..., "label": labels}}``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

CHIPS = {"adwp": "Chifunfu", "adwu": "Chifunfu", "aeaj": "Australia - Central"}
UNLABELLED = "zzzz"
DATETIME = "2020-04-29T08:20:47Z"


def _chips_maker():
    path = Path(__file__).parent.parent / "chips" / "make.py"
    spec = importlib.util.spec_from_file_location("_make_chips_for_oncloudn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHIP_MAKER = _chips_maker()
SIZE = CHIP_MAKER.SIZE


def write(root: Path, *, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    (root / "train_labels").mkdir(parents=True, exist_ok=True)
    rows = ["chip_id,location,datetime,cloudpath"]
    for i, (chip, location) in enumerate([*CHIPS.items(), (UNLABELLED, "Chifunfu")]):
        folder = root / "train_features" / chip
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for band in CHIP_MAKER.BANDS:
            arrays[band] = CHIP_MAKER.band_dn(i, band, rng)
            CHIP_MAKER.write_tif(folder / f"{band}.tif", arrays[band], 0, {})
        rows.append(f"{chip},{location},{DATETIME},az://./train_features/{chip}")
        if chip == UNLABELLED:
            continue
        label = np.zeros((SIZE, SIZE), np.uint8)
        label[:, : SIZE // 2 + i] = 1
        CHIP_MAKER.write_tif(root / "train_labels" / f"{chip}.tif", label, 255, {})
        written[chip] = {**arrays, "label": label}
    (root / "train_metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return written
