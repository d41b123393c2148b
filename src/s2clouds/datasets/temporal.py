"""The spatio-temporal Sentinel-2 cloud dataset (Yin et al., TFRecord time series).

On disk: files ``{train|val}_<tile>_<n>`` (``n`` = number of records), each a TFRecord file of
``tf.train.Example`` records, shipped as ``<name>.7z``. Extracted files are read directly;
archives are read with ``py7zr`` (streamed when iterating, extracted once into ``extract_dir``
for random access). TensorFlow is not needed.

Record features (dataset card): ``localid`` int64; ``image_raw_ldseries`` bytes of
little-endian uint16 reshaped to (T, 4, 42, 42), bands B02, B03, B04, B08 at 10 m;
``labels`` bytes of int8, one label per timestamp for the centre 6 x 6 pixels (0 clear,
1 opaque cloud, 2 thin cloud, 3 haze, 4 cloud shadow, 5 snow); ``dates`` bytes of int64
(the card calls them ordinals); ``weights`` bytes of float32 (reserved). Int64 or float lists
are accepted in place of the raw bytes. ``localid`` and ``weights`` are optional: a record
without them reads as the card's parser reads it (``localid`` -1, no weights).

Samples are time series, so the contract's (C, H, W) becomes (T, C, H, W):

``image``  (T, 4, 42, 42) float32 reflectance = DN / 10000 (no offset unless ``radiometry``
           says otherwise), NaN where DN is 0 (no data)
``labels`` (T,) int8, the dataset's raw class per timestamp
``mask``   (T, 42, 42) uint8, the label on the centre 6 x 6 pixels, 255 elsewhere
``mask_canonical`` (T, 42, 42) uint8 canonical classes on the centre, 255 elsewhere
``valid``  (T, 42, 42) bool, True only on the centre 6 x 6 where the label is a known class
           and every band holds data
``meta``   localid, dates (ISO strings or None) and dates_raw, weights, file, record, tile,
           split
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import numpy as np

from s2clouds._optional import require
from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.datasets.tfrecord import (
    FeatureValue,
    TFRecordFile,
    decode_example,
    iter_records,
)
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA, get_scheme, to_canonical
from s2clouds.radiometry import DN_NO_OFFSET, Radiometry, to_reflectance

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_FILE_NAME = re.compile(r"^(?P<split>train|val)_(?P<tile>.+)_(?P<count>\d+)(?P<ext>\.7z)?$")
SPLITS = ("train", "val")
PATCH = 42
CENTRE = slice(18, 24)  # the labelled 6 x 6 block: 60 m pixel at the patch centre
_IMAGE_FEATURE = "image_raw_ldseries"
#: plausible Sentinel-2 era for reading ``dates`` as proleptic Gregorian day ordinals
_ORDINAL_RANGE = (dt.date(2015, 1, 1).toordinal(), dt.date(2100, 12, 31).toordinal())


@dataclass(frozen=True)
class _SeriesFile:
    """One dataset file: a TFRecord file or a ``.7z`` holding one."""

    path: Path
    split: str
    tile: str
    declared: int | None  # record count from the file name

    @property
    def is_archive(self) -> bool:
        return self.path.suffix == ".7z"

    @property
    def member(self) -> str:
        """Name of the TFRecord file (inside the archive, or the file itself)."""
        return self.path.stem if self.is_archive else self.path.name


def _parse_name(path: Path) -> _SeriesFile | None:
    match = _FILE_NAME.match(path.name)
    if match is None:
        return None
    return _SeriesFile(path, match["split"], match["tile"], int(match["count"]))


def _find_files(root: Path) -> list[_SeriesFile]:
    """Dataset files under ``root`` (any depth); an extracted file hides its ``.7z``."""
    found = [f for p in sorted(root.rglob("*")) if p.is_file() and (f := _parse_name(p))]
    extracted = {(f.path.parent, f.member) for f in found if not f.is_archive}
    return [f for f in found if not (f.is_archive and (f.path.parent, f.member) in extracted)]


def _explicit_files(paths: Sequence[Path | str]) -> list[_SeriesFile]:
    """Files given one by one; names outside the convention are counted by scanning."""
    files = []
    for p in map(Path, paths):
        require_path(p, "spatio-temporal dataset file")
        files.append(_parse_name(p) or _SeriesFile(p, "unknown", "unknown", None))
    return files


# --------------------------------------------------------------------------------------------
# .7z archives (py7zr)
# --------------------------------------------------------------------------------------------


def _import_py7zr() -> Any:
    """py7zr, or :class:`DatasetError` (the archives may be extracted with 7-Zip instead)."""
    return require("py7zr", "datasets", purpose="reading .7z archives", error=DatasetError)


class _StopExtraction(Exception):
    """Raised inside the extraction thread when the reader stops early."""


def _archive_chunks(archive: Path, member: str) -> Iterator[bytes]:
    """Decompressed bytes of ``member`` in chunks, with memory bounded by a small queue.

    py7zr pushes data into a writer; a thread runs the extraction and hands chunks over a
    bounded queue, so a multi-gigabyte member never sits in memory.
    """
    py7zr = _import_py7zr()
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=16)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _StopExtraction

    writer_base: Any = py7zr.io.Py7zIO
    factory_base: Any = py7zr.io.WriterFactory

    class QueueWriter(writer_base):
        def __init__(self) -> None:
            self.written = 0

        def write(self, s: bytes | bytearray) -> int:
            put(bytes(s))
            self.written += len(s)
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.written

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return self.written

    class QueueFactory(factory_base):
        def create(self, filename: str) -> Any:
            return QueueWriter()

    def extract() -> None:
        try:
            with py7zr.SevenZipFile(archive, "r") as zf:
                zf.extract(targets=[member], factory=QueueFactory())
            put(None)
        except _StopExtraction:
            return
        except Exception as exc:  # handed to the reading thread
            try:
                put(exc)
            except _StopExtraction:
                return

    worker = threading.Thread(target=extract, name=f"7z:{archive.name}", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise DatasetError(
                    f"{archive}: cannot decompress ({item}); download it again"
                ) from item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class _ChunkStream:
    """A minimal read-only binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _archive_member_name(archive: Path, wanted: str) -> str:
    """The TFRecord member of ``archive``: ``wanted`` when present, else its only file."""
    py7zr = _import_py7zr()
    try:
        with py7zr.SevenZipFile(archive, "r") as zf:
            names = [info.filename for info in zf.list() if not info.is_directory]
    except (py7zr.exceptions.ArchiveError, OSError, EOFError, ValueError) as exc:
        raise DatasetError(
            f"{archive} is not a readable 7z archive ({type(exc).__name__}: {exc}); it is "
            "truncated or damaged, download it again"
        ) from exc
    if wanted in names:
        return wanted
    if len(names) == 1:
        return str(names[0])
    raise DatasetError(
        f"{archive}: expected one TFRecord file named {wanted!r}, found {names}; "
        "extract it by hand and pass the file"
    )


# --------------------------------------------------------------------------------------------
# record decoding
# --------------------------------------------------------------------------------------------


#: defaults of the optional features, as the card's parser declares them
#: (``FixedLenFeature([], tf.int64, -1)`` for ``localid``; ``''`` decoded as no weights)
OPTIONAL_FEATURES: dict[str, np.ndarray] = {
    "localid": np.array([-1], dtype=np.int64),
    "weights": np.zeros(0, dtype=np.float32),
}


def _feature_array(
    features: dict[str, FeatureValue], name: str, dtype: str, source: str
) -> np.ndarray:
    """A feature as a 1-D array of ``dtype``: raw bytes (as ``decode_raw``) or a number list;
    an absent optional feature (:data:`OPTIONAL_FEATURES`) gets the card's default."""
    if name not in features and name in OPTIONAL_FEATURES:
        return OPTIONAL_FEATURES[name].astype(dtype)
    if name not in features:
        raise DatasetError(
            f"{source}: record has no feature {name!r} (it has {sorted(features)}); "
            "is this a file of the spatio-temporal cloud dataset?"
        )
    value = features[name]
    if isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    if len(value) != 1:
        raise DatasetError(
            f"{source}: feature {name!r} holds {len(value)} byte strings, expected 1"
        )
    raw = value[0]
    itemsize = np.dtype(dtype).itemsize
    if len(raw) % itemsize:
        raise DatasetError(
            f"{source}: feature {name!r} has {len(raw)} bytes, not a multiple of {itemsize} "
            f"({np.dtype(dtype).name}); the record is damaged"
        )
    return np.frombuffer(raw, dtype=dtype)


def _series_dn(features: dict[str, FeatureValue], source: str) -> np.ndarray:
    """The DN image series (T, 4, 42, 42) uint16 (a view of the record bytes)."""
    flat = _feature_array(features, _IMAGE_FEATURE, "<u2", source)
    per_timestamp = len(TemporalCloudDataset.BANDS) * PATCH * PATCH
    if flat.size == 0 or flat.size % per_timestamp:
        raise DatasetError(
            f"{source}: {_IMAGE_FEATURE!r} holds {flat.size} values, not a multiple of "
            f"4 x 42 x 42 = {per_timestamp}; the record is damaged"
        )
    return flat.reshape(-1, len(TemporalCloudDataset.BANDS), PATCH, PATCH)


def _series_reflectance(dn: np.ndarray, bands: Sequence[str], radiometry: Radiometry) -> np.ndarray:
    """(T, C, H, W) DN -> (T, C, H, W) float32 reflectance, NaN where DN is 0.

    The series is handed to :func:`to_reflectance` as one (T*C, H, W) stack with the band
    names repeated per timestamp, which needs no copy of the input.
    """
    t, c, h, w = dn.shape
    stack = to_reflectance(dn.reshape(t * c, h, w), tuple(bands) * t, radiometry, nodata=0)
    return stack.reshape(t, c, h, w)


def _centre_block(values: np.ndarray) -> np.ndarray:
    """(T,) uint8 -> (T, 42, 42) uint8 with the value on the centre 6 x 6 and 255 elsewhere."""
    out = np.full((values.size, PATCH, PATCH), NODATA, dtype=np.uint8)
    out[:, CENTRE, CENTRE] = values[:, None, None]
    return out


def iso_date(value: int) -> str | None:
    """ISO date of one ``dates`` value, read as a day ordinal (``date.toordinal``) or YYYYMMDD.

    Returns None when neither reading gives a date between 2015 and 2100.
    """
    if _ORDINAL_RANGE[0] <= value <= _ORDINAL_RANGE[1]:
        return dt.date.fromordinal(value).isoformat()
    try:
        parsed = dt.datetime.strptime(str(value), "%Y%m%d").date()
    except ValueError:
        return None
    return parsed.isoformat() if 2015 <= parsed.year <= 2100 else None


class TemporalCloudDataset(CloudDataset):
    """Reader of the spatio-temporal S2 cloud dataset (time series of 42 x 42 patches).

    ``root``: a folder (searched at any depth for ``{train|val}_<tile>_<n>`` files and their
    ``.7z`` archives) or a list of files. ``split``: ``"train"``, ``"val"`` or None for both.
    ``canonical``: add ``mask_canonical``. ``radiometry``: how DN become reflectance (the card
    states no processing-baseline offset; default DN / 10000). ``verify``: check CRCs.
    ``extract_dir``: where archives are extracted for random access (default: a temporary
    folder removed with the reader). The number of records per file is taken from the file
    name and checked when the file is first opened.
    """

    name: ClassVar[str] = "temporal"
    label_scheme: ClassVar[str] = "spatiotemporal"
    protocol: ClassVar[str] = "spatiotemporal"
    BANDS: ClassVar[tuple[str, ...]] = ("B02", "B03", "B04", "B08")

    def __init__(
        self,
        root: Path | str | Sequence[Path | str],
        *,
        split: str | None = None,
        canonical: bool = True,
        radiometry: Radiometry = DN_NO_OFFSET,
        verify: bool = True,
        extract_dir: Path | str | None = None,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or None")
        if isinstance(root, str | Path):
            self.root: Path | None = require_path(root, "spatio-temporal dataset folder")
            files = _find_files(self.root) if self.root.is_dir() else _explicit_files([self.root])
        else:
            self.root = None
            files = _explicit_files(root)
        self.files = [f for f in files if split is None or f.split == split]
        if not self.files:
            raise DatasetError(
                f"no spatio-temporal dataset files ({{train|val}}_<tile>_<n>[.7z]) found for "
                f"split {split or 'any'} in {root}; download them or give the file list"
            )
        self.split = split
        self.canonical = canonical
        self.radiometry = radiometry
        self.verify = verify
        self._extract_dir = Path(extract_dir) if extract_dir is not None else None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._readers: dict[int, TFRecordFile] = {}
        counts = [self._record_count(i) for i in range(len(self.files))]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # -- discovery ------------------------------------------------------------------------
    @classmethod
    def detect(cls, path: Path) -> bool:
        """True for a dataset file or a folder with one (names only, two levels deep)."""
        path = Path(path)
        if path.is_file():
            return _parse_name(path) is not None
        if not path.is_dir():
            return False
        for child in path.iterdir():
            if _FILE_NAME.match(child.name):
                return True
            if child.is_dir() and any(_FILE_NAME.match(c.name) for c in child.iterdir()):
                return True
        return False

    def _record_count(self, i: int) -> int:
        declared = self.files[i].declared
        return declared if declared is not None else len(self._reader(i))

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        file_no = int(np.searchsorted(self._starts, index, side="right")) - 1
        record_no = index - int(self._starts[file_no])
        reader = self._reader(file_no)
        return self._sample(reader[record_no], self.files[file_no], record_no)

    def __iter__(self) -> Iterator[Sample]:
        """Stream every sample in order, file by file (archives decompressed on the fly)."""
        for entry in self.files:
            count = 0
            for count, data in enumerate(self._stream(entry), start=1):
                yield self._sample(data, entry, count - 1)
            self._check_count(entry, count)

    def _stream(self, entry: _SeriesFile) -> Iterator[bytes]:
        if not entry.is_archive:
            yield from TFRecordFile(entry.path, verify=self.verify)
            return
        member = _archive_member_name(entry.path, entry.member)
        stream: IO[bytes] = _ChunkStream(_archive_chunks(entry.path, member))  # type: ignore[assignment]
        source = f"{entry.path}!{member}"
        for _, data in iter_records(stream, source=source, verify=self.verify):
            yield data

    def _reader(self, file_no: int) -> TFRecordFile:
        if file_no not in self._readers:
            entry = self.files[file_no]
            path = self._extracted(entry) if entry.is_archive else entry.path
            reader = TFRecordFile(path, verify=self.verify)
            self._check_count(entry, len(reader))
            self._readers[file_no] = reader
        return self._readers[file_no]

    @staticmethod
    def _check_count(entry: _SeriesFile, found: int) -> None:
        if entry.declared is not None and found != entry.declared:
            raise DatasetError(
                f"{entry.path}: holds {found} records but its name says {entry.declared}; the "
                f"file is incomplete (download or extract it again) or was renamed"
            )

    def _extracted(self, entry: _SeriesFile) -> Path:
        """Extract the TFRecord file of an archive once and return its path."""
        if self._extract_dir is None:
            self._tempdir = self._tempdir or tempfile.TemporaryDirectory(prefix="s2clouds-7z-")
            self._extract_dir = Path(self._tempdir.name)
        target = self._extract_dir / entry.member
        if not target.exists():
            from s2clouds.io.write import atomic_path

            member = _archive_member_name(entry.path, entry.member)
            self._extract_dir.mkdir(parents=True, exist_ok=True)
            # a private temporary name per process: workers extracting at once do not clash,
            # and an interrupted extraction leaves no partial file behind
            with atomic_path(target) as partial, open(partial, "wb") as out:
                for chunk in _archive_chunks(entry.path, member):
                    out.write(chunk)
        return target

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = {}
        state["_tempdir"] = None  # the parent keeps (and removes) the temporary folder
        return state

    # -- samples --------------------------------------------------------------------------
    def _sample(self, data: bytes, entry: _SeriesFile, record_no: int) -> Sample:
        source = f"{entry.path} record {record_no}"
        features = decode_example(data, source=source)
        dn = _series_dn(features, source)
        n_timestamps = dn.shape[0]
        labels = _feature_array(features, "labels", "i1", source)
        dates = _feature_array(features, "dates", "<i8", source)
        weights = _feature_array(features, "weights", "<f4", source)
        self._check_lengths(source, n_timestamps, labels=labels, dates=dates)
        if weights.size not in (0, n_timestamps):
            raise DatasetError(
                f"{source}: {weights.size} weights for {n_timestamps} timestamps; the record is damaged"
            )
        image = _series_reflectance(dn, self.BANDS, self.radiometry)
        classes = get_scheme(self.label_scheme).classes
        known = np.array([int(v) in classes for v in labels], dtype=bool)
        label_u8 = np.where(known, labels, NODATA).astype(np.uint8)
        mask = _centre_block(label_u8)
        valid = np.zeros(mask.shape, dtype=bool)
        centre_has_data = np.isfinite(image[:, :, CENTRE, CENTRE]).all(axis=1)
        valid[:, CENTRE, CENTRE] = known[:, None, None] & centre_has_data
        localid = _feature_array(features, "localid", "<i8", source)
        sample: Sample = {
            "image": image,
            "labels": labels.copy(),
            "mask": mask,
            "valid": valid,
            "bands": self.BANDS,
            "crs": None,
            "transform": None,
            "meta": {
                "localid": int(localid[0]) if localid.size else None,
                "dates": [iso_date(int(d)) for d in dates],
                "dates_raw": dates.copy(),
                "weights": weights.copy(),
                "file": str(entry.path),
                "record": record_no,
                "tile": entry.tile,
                "split": entry.split,
                "radiometry": self.radiometry.describe(),
            },
        }
        if self.canonical:
            sample["mask_canonical"] = _centre_block(
                to_canonical(label_u8, self.label_scheme, unknown="nodata")
            )
        return sample

    @staticmethod
    def _check_lengths(source: str, n_timestamps: int, **arrays: np.ndarray) -> None:
        for name, array in arrays.items():
            if array.size != n_timestamps:
                raise DatasetError(
                    f"{source}: {array.size} {name} for {n_timestamps} timestamps in "
                    f"{_IMAGE_FEATURE!r}; the record is damaged"
                )

    # -- reporting ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        per_split: dict[str, int] = {}
        for entry, start, stop in zip(self.files, self._starts[:-1], self._starts[1:], strict=True):
            per_split[entry.split] = per_split.get(entry.split, 0) + int(stop - start)
        return {
            **super().summary(),
            "files": len(self.files),
            "archives": sum(f.is_archive for f in self.files),
            "tiles": sorted({f.tile for f in self.files}),
            "samples_per_split": per_split,
            "bands": self.BANDS,
            "image_shape": "(T, 4, 42, 42), T up to 100",
        }

    def plot(
        self,
        index: int,
        *,
        layers: Sequence[str] | None = None,
        stretch: str = "percentile",
        max_timestamps: int = 8,
    ) -> Figure:
        """RGB quicklooks of the first ``max_timestamps`` timestamps of sample ``index``.

        One column per timestamp, titled with its date and label; the labelled centre block is
        outlined in red. ``layers`` adds one row per name of a (T, 42, 42) sample array (e.g.
        ``"valid"``, ``"mask_canonical"``, ``"mask"``) at the same timestamps. ``stretch``:
        ``"percentile"`` or ``"fixed"`` (see :func:`s2clouds.viz.rgb_quicklook`).
        """
        from s2clouds.viz import require_matplotlib, rgb_quicklook, show_layer

        require_matplotlib()
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        if max_timestamps < 1:
            raise DatasetError(f"max_timestamps must be at least 1, not {max_timestamps}")
        sample = self[index]
        rows = [(name, self._series_layer(sample, name)) for name in layers or ()]
        n = min(max_timestamps, sample["image"].shape[0])
        fig = Figure(figsize=(2 * n, 2.4 * (1 + len(rows))))
        axes = fig.subplots(1 + len(rows), n, squeeze=False)
        scheme = get_scheme(self.label_scheme)
        side = CENTRE.stop - CENTRE.start
        for t, ax in enumerate(axes[0]):
            ax.imshow(rgb_quicklook(sample["image"][t], sample["bands"], stretch=stretch))
            corner = CENTRE.start - 0.5  # pixel edges lie half a pixel before the centres
            ax.add_patch(Rectangle((corner, corner), side, side, fill=False, edgecolor="red"))
            label = int(sample["labels"][t])
            date = sample["meta"]["dates"][t] or str(sample["meta"]["dates_raw"][t])
            ax.set_title(f"{date}\n{scheme.classes.get(label, label)}", fontsize=8)
        for row, (name, series) in zip(axes[1:], rows, strict=True):
            for t, ax in enumerate(row):
                show_layer(ax, name, series[t])
        for ax in axes.ravel():
            ax.set_axis_off()
        fig.suptitle(f"{self.name} #{index} (localid {sample['meta']['localid']})")
        return fig

    @staticmethod
    def _series_layer(sample: Sample, name: str) -> np.ndarray:
        """The (T, 42, 42) array ``sample[name]``; refuse names that are not such an array."""
        value = sample.get(name)
        series = [k for k, v in sample.items() if isinstance(v, np.ndarray) and v.ndim == 3]
        if not isinstance(value, np.ndarray) or value.ndim != 3:
            raise DatasetError(
                f"{name!r} is not a (T, 42, 42) layer of temporal samples; use one of "
                f"{', '.join(series)}"
            )
        return value
