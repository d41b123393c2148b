"""Records per second through the TFRecord reader against the raw cost of reading the bytes.

Writes a TFRecord file of realistic spatio-temporal dataset records (T timestamps of
4 x 42 x 42 uint16, int8 labels, int64 dates, float32 weights), then times, best of
``--repeat`` runs over the warm file:

* raw read: the same byte ranges read with plain ``file.read`` (no parsing, no checks)
* raw read + np.frombuffer: the above plus an array view of every record
* framing + CRC: ``TFRecordFile`` iteration (length and data CRC-32C checked)
* decoded arrays: framing + CRC + ``decode_example`` + image/labels/dates/weights arrays
* the two above with ``verify=False`` (no CRC-32C), to show what the checksums cost
* dataset samples: ``TemporalCloudDataset`` iteration (float32 reflectance, masks, meta)

The goal is "decoded arrays" within 1.5x of "raw read + np.frombuffer".

Run: ``python benchmarks/dataset_read_tfrecord.py --records 3000 --timestamps 20``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from s2clouds.datasets import tfrecord
from s2clouds.datasets.temporal import TemporalCloudDataset
from s2clouds.datasets.tfrecord import TFRecordFile, decode_example, encode_example, scan_index


def write_dataset_file(path: Path, n_records: int, n_timestamps: int, seed: int = 0) -> int:
    """Write ``n_records`` records; returns the file size in bytes."""
    rng = np.random.default_rng(seed)
    image = rng.integers(200, 6000, size=(n_timestamps, 4, 42, 42), dtype=np.uint16)
    day0 = 737000

    def records():
        for i in range(n_records):
            yield encode_example(
                {
                    "localid": np.array([i]),
                    "image_raw_ldseries": np.roll(image, i, axis=-1).astype("<u2").tobytes(),
                    "labels": rng.integers(0, 6, n_timestamps, dtype=np.int8).tobytes(),
                    "dates": (day0 + 5 * np.arange(n_timestamps, dtype="<i8")).tobytes(),
                    "weights": np.ones(n_timestamps, "<f4").tobytes(),
                }
            )

    tfrecord.write_records(path, records())
    return path.stat().st_size


def raw_read(path: Path, sizes: list[int], with_frombuffer: bool) -> int:
    """Read the same byte ranges as the reader, optionally viewing each as an array."""
    total = 0
    with open(path, "rb") as f:
        for size in sizes:
            data = f.read(size)
            if with_frombuffer:
                total += np.frombuffer(data, dtype=np.uint8).size
            else:
                total += len(data)
    return total


def framed(path: Path, verify: bool = True) -> int:
    return sum(len(r) for r in TFRecordFile(path, verify=verify))


def decoded(path: Path, verify: bool = True) -> int:
    n = 0
    for data in TFRecordFile(path, verify=verify):
        features = decode_example(data)
        image = np.frombuffer(features["image_raw_ldseries"][0], "<u2").reshape(-1, 4, 42, 42)
        labels = np.frombuffer(features["labels"][0], "i1")
        dates = np.frombuffer(features["dates"][0], "<i8")
        weights = np.frombuffer(features["weights"][0], "<f4")
        n += image.shape[0] + labels.size + dates.size + weights.size
    return n


def samples(path: Path) -> int:
    return sum(s["image"].shape[0] for s in TemporalCloudDataset([path]))


def best_times(stages: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each stage over ``repeat`` rounds, stages interleaved per round.

    Interleaving keeps load from other processes from favouring one stage.
    """
    best = {name: float("inf") for name in stages}
    for _ in range(repeat):
        for name, fn in stages.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--timestamps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / f"train_TBENCH_{args.records}"
        size = write_dataset_file(path, args.records, args.timestamps)
        index = scan_index(path)
        sizes = (index.lengths + 16).tolist()
        n = len(index)
        crc = "google-crc32c" if tfrecord._FAST_CRC32C is not None else "numpy fallback"
        print(f"file: {n} records, T={args.timestamps}, {size / 1e6:.1f} MB; CRC-32C: {crc}")
        stages = {
            "raw read": lambda: raw_read(path, sizes, False),
            "raw read + np.frombuffer": lambda: raw_read(path, sizes, True),
            "framing + CRC (TFRecordFile)": lambda: framed(path),
            "decoded arrays (+ decode_example)": lambda: decoded(path),
            "framing, no CRC (verify=False)": lambda: framed(path, verify=False),
            "decoded arrays, no CRC (verify=False)": lambda: decoded(path, verify=False),
            "dataset samples (TemporalCloudDataset)": lambda: samples(path),
        }
        results = best_times(stages, args.repeat)
        baseline = results["raw read + np.frombuffer"]
        print(f"{'stage':40s} {'records/s':>10s} {'MB/s':>8s} {'x raw+frombuffer':>17s}")
        for name, seconds in results.items():
            print(
                f"{name:40s} {n / seconds:10.0f} {size / 1e6 / seconds:8.0f} {seconds / baseline:17.2f}"
            )
        ratio = results["decoded arrays (+ decode_example)"] / baseline
        print(f"decoded arrays vs raw read + np.frombuffer: {ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
