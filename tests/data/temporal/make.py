"""Write tiny files of the spatio-temporal S2 cloud dataset in its real on-disk format.

Each file is a TFRecord file named ``{train|val}_<tile>_<n>`` holding ``n`` serialised
``tf.train.Example`` records with the features of the dataset card: ``localid`` (int64 list),
``image_raw_ldseries`` (bytes, little-endian uint16 of shape (T, 4, 42, 42)), ``labels``
(bytes, int8 per timestamp), ``dates`` (bytes, int64 proleptic Gregorian day ordinals) and
``weights`` (bytes, float32). With ``archive=True`` every file is packed into ``<name>.7z``
(needs ``py7zr``) and the plain file is removed, as in the download.

Usage: ``write(tmp_path)`` returns ``{file name: [record dict, ...]}`` with the values written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.datasets.tfrecord import encode_example, write_records

PATCH = 42
N_BANDS = 4
#: (file stem, number of timestamps of each record); the record count is the list length
FILES: dict[str, list[int]] = {
    "train_T50RKR_3": [5, 3, 7],
    "val_T49QGF_2": [4, 6],
}
FIRST_DAY = dt.date(2019, 1, 3).toordinal()


def make_record(localid: int, n_timestamps: int, rng: np.random.Generator) -> dict[str, Any]:
    """Values of one record: DN image (T, 4, 42, 42) uint16, labels (T,) int8 in 0..5, ..."""
    image = rng.integers(200, 6000, size=(n_timestamps, N_BANDS, PATCH, PATCH), dtype=np.uint16)
    image[0, :, 0, 0] = 0  # one no-data pixel (DN 0) outside the labelled centre
    return {
        "localid": localid,
        "image": image,
        "labels": rng.integers(0, 6, size=n_timestamps, dtype=np.int8),
        "dates": FIRST_DAY + 5 * np.arange(n_timestamps, dtype=np.int64),
        "weights": rng.random(n_timestamps, dtype=np.float32),
    }


def serialise(record: dict[str, Any]) -> bytes:
    """The ``tf.train.Example`` bytes of one record, encoded as the dataset stores them."""
    return encode_example(
        {
            "localid": np.array([record["localid"]], dtype=np.int64),
            "image_raw_ldseries": record["image"].astype("<u2").tobytes(),
            "labels": record["labels"].astype(np.int8).tobytes(),
            "dates": record["dates"].astype("<i8").tobytes(),
            "weights": record["weights"].astype("<f4").tobytes(),
        }
    )


def write(root: Path, *, archive: bool = False, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Write the files of :data:`FILES` into ``root``; returns the records written per file."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written: dict[str, list[dict[str, Any]]] = {}
    localid = 100
    for stem, lengths in FILES.items():
        records = []
        for n_timestamps in lengths:
            records.append(make_record(localid, n_timestamps, rng))
            localid += 1
        write_records(root / stem, (serialise(r) for r in records))
        if archive:
            _pack_7z(root / stem)
        written[stem] = records
    return written


def _pack_7z(path: Path) -> None:
    import py7zr

    with py7zr.SevenZipFile(path.with_name(path.name + ".7z"), "w") as archive:
        archive.write(path, arcname=path.name)
    path.unlink()
