"""TFRecord files and ``tf.train.Example`` records, read and written without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length            (little-endian)
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

where ``masked_crc32c(x) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32`` of the CRC-32C
(Castagnoli) checksum. Records are streamed one at a time, so memory stays flat for files of
many gigabytes; :class:`TFRecordFile` scans the record headers once (no data read) to allow
random access.

``tf.train.Example`` is decoded with a small protocol-buffer wire-format reader::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

Packed and unpacked repeated numbers are both accepted. CRC-32C uses the ``google-crc32c``
package when it is installed and a vectorised numpy implementation otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np

from s2clouds.errors import DatasetError

# --------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli)
# --------------------------------------------------------------------------------------------

_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_SMALL_INPUT = 64  # bytes below which a plain Python loop beats numpy


def _byte_table() -> np.ndarray:
    """The 256-entry table of the reflected CRC-32C, ``uint32``."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_CRC32C_POLY), table >> 1)
    return table.astype(np.uint32)


_TABLE = _byte_table()
_TABLE_LIST: list[int] = [int(v) for v in _TABLE]


def _register_bytewise(register: int, data: bytes | bytearray | memoryview) -> int:
    """Run ``data`` through the CRC register one byte at a time (no init or final xor)."""
    table = _TABLE_LIST
    for byte in bytes(data):
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


@lru_cache(maxsize=16)
def _zero_shift_tables(n_zero_bytes: int) -> np.ndarray:
    """Tables (4, 256) uint32 applying "feed ``n_zero_bytes`` zeros" to a register.

    Feeding zeros is linear over GF(2), so it is fixed by its effect on the 32 basis registers;
    the four tables apply it one register byte at a time.
    """
    columns = np.array(
        [_register_bytewise(1 << bit, bytes(n_zero_bytes)) for bit in range(32)], dtype=np.uint32
    )
    values = np.arange(256)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for byte_pos in range(4):
        for bit in range(8):
            has_bit = ((values >> bit) & 1).astype(bool)
            tables[byte_pos, has_bit] ^= columns[8 * byte_pos + bit]
    return tables


def _crc32c_numpy(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data`` with numpy: many chunks in parallel, then combined.

    The data is cut into ``k`` chunks of ``L`` bytes; all chunks run through the table at once
    (``L`` numpy steps over ``k`` lanes), then the chunk registers are folded left to right by
    shifting the running register over ``L`` zero bytes. About 50 MB/s; used only when
    ``google-crc32c`` is not installed.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n = buf.size
    if n < _SMALL_INPUT:
        return _register_bytewise(_U32, data) ^ _U32
    chunk = max(16, int(np.sqrt(n)))
    lanes = n // chunk
    block = buf[: lanes * chunk].reshape(lanes, chunk)
    registers = np.zeros(lanes, dtype=np.uint32)
    for j in range(chunk):
        registers = _TABLE[(registers ^ block[:, j]) & 0xFF] ^ (registers >> 8)
    shift = _zero_shift_tables(chunk)
    t0, t1, t2, t3 = (list(map(int, row)) for row in shift)
    register = _U32
    for lane_register in registers.tolist():
        register = (
            t0[register & 0xFF]
            ^ t1[(register >> 8) & 0xFF]
            ^ t2[(register >> 16) & 0xFF]
            ^ t3[register >> 24]
            ^ lane_register
        )
    register = _register_bytewise(register, buf[lanes * chunk :].tobytes())
    return register ^ _U32


def _load_fast_crc32c() -> Any:
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.value


_FAST_CRC32C = _load_fast_crc32c()


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli) checksum of ``data`` as an unsigned 32-bit int."""
    if _FAST_CRC32C is not None:
        return int(_FAST_CRC32C(bytes(data) if not isinstance(data, bytes) else data))
    return _crc32c_numpy(data)


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC-32C that TFRecord framing stores (rotate right 15, add a constant)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


# --------------------------------------------------------------------------------------------
# TFRecord framing
# --------------------------------------------------------------------------------------------

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER_SIZE = _LENGTH.size + _CRC.size  # 12
_FOOTER_SIZE = _CRC.size  # 4
_MAX_RECORD = 1 << 31  # refuse absurd lengths (a damaged header) instead of allocating them


def encode_record(data: bytes) -> bytes:
    """Frame one record: length, masked CRC of the length, data, masked CRC of the data."""
    length = _LENGTH.pack(len(data))
    return length + _CRC.pack(masked_crc32c(length)) + data + _CRC.pack(masked_crc32c(data))


def write_records(path: Path | str, records: Iterable[bytes]) -> int:
    """Write ``records`` to a TFRecord file at ``path``; returns how many were written."""
    count = 0
    with open(path, "wb") as f:
        for data in records:
            f.write(encode_record(data))
            count += 1
    return count


def _parse_header(header: bytes, source: str, offset: int, verify: bool) -> int:
    """Length of the record whose 12-byte header starts at ``offset``; checks its CRC."""
    if len(header) < _HEADER_SIZE:
        raise DatasetError(
            f"{source}: truncated TFRecord header at byte {offset} ({len(header)} of 12 bytes); "
            "the file is incomplete, download or extract it again"
        )
    raw_length = header[: _LENGTH.size]
    (length,) = _LENGTH.unpack(raw_length)
    if verify:
        (stored,) = _CRC.unpack_from(header, _LENGTH.size)
        if stored != masked_crc32c(raw_length):
            raise DatasetError(
                f"{source}: CRC mismatch in the length of the record at byte {offset}; "
                "the file is damaged or not a TFRecord file, download or extract it again"
            )
    if length > _MAX_RECORD:
        raise DatasetError(
            f"{source}: record at byte {offset} claims {length} bytes; the file is damaged"
        )
    return int(length)


def _read_body(stream: IO[bytes], length: int, source: str, offset: int, verify: bool) -> bytes:
    """Read the data and the 4-byte data CRC of the record at ``offset``; check both."""
    data = stream.read(length)
    footer = stream.read(_FOOTER_SIZE)
    if len(data) < length or len(footer) < _FOOTER_SIZE:
        raise DatasetError(
            f"{source}: truncated TFRecord record at byte {offset} (expected {length + 16} "
            f"bytes, {len(data) + len(footer) + _HEADER_SIZE} left); the file is incomplete, "
            "download or extract it again"
        )
    if verify:
        (stored,) = _CRC.unpack(footer)
        if stored != masked_crc32c(data):
            raise DatasetError(
                f"{source}: CRC mismatch in the data of the record at byte {offset}; the file "
                "is damaged, download or extract it again (or pass verify=False to skip checks)"
            )
    return data


def iter_records(
    stream: IO[bytes], *, source: str = "<stream>", verify: bool = True
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, data)`` for each record of an open binary stream, one at a time.

    ``offset`` is the byte position of the record header. Works on any object with ``read``
    (files, pipes, archive members). Raises :class:`DatasetError` naming ``source`` and the
    byte offset on truncation or CRC mismatch.
    """
    offset = 0
    while True:
        header = stream.read(_HEADER_SIZE)
        if not header:
            return
        length = _parse_header(header, source, offset, verify)
        yield offset, _read_body(stream, length, source, offset, verify)
        offset += _HEADER_SIZE + length + _FOOTER_SIZE


@dataclass(frozen=True)
class RecordIndex:
    """Where the records of one file are: header ``offsets`` and data ``lengths`` (int64, (N,))."""

    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size)


def scan_index(path: Path | str, *, verify: bool = True) -> RecordIndex:
    """Read only the 12-byte headers of a TFRecord file and return its :class:`RecordIndex`.

    Checks each length CRC (``verify``) and that the last record is complete.
    """
    path = Path(path)
    size = path.stat().st_size
    offsets: list[int] = []
    lengths: list[int] = []
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            length = _parse_header(f.read(_HEADER_SIZE), str(path), offset, verify)
            end = offset + _HEADER_SIZE + length + _FOOTER_SIZE
            if end > size:
                raise DatasetError(
                    f"{path}: truncated TFRecord record at byte {offset} (needs {end - offset} "
                    f"bytes, {size - offset} left); the file is incomplete, download or "
                    "extract it again"
                )
            offsets.append(offset)
            lengths.append(length)
            offset = end
    return RecordIndex(np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64))


class TFRecordFile:
    """Random and sequential access to the records of one TFRecord file.

    The index is built on first random access (headers only). Iterating streams the file
    without building it. The open file handle is not pickled, so instances can be sent to
    worker processes.
    """

    def __init__(self, path: Path | str, *, verify: bool = True) -> None:
        self.path = Path(path)
        self.verify = verify
        self._index: RecordIndex | None = None
        self._handle: IO[bytes] | None = None

    @property
    def index(self) -> RecordIndex:
        """The :class:`RecordIndex`, scanned on first use."""
        if self._index is None:
            self._index = scan_index(self.path, verify=self.verify)
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> bytes:
        """The data of record ``i`` (CRCs checked when ``verify``)."""
        index = self.index
        offset = int(index.offsets[i])
        length = int(index.lengths[i])
        f = self._open()
        f.seek(offset + _HEADER_SIZE)
        return _read_body(f, length, str(self.path), offset, self.verify)

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            for _, data in iter_records(f, source=str(self.path), verify=self.verify):
                yield data

    def _open(self) -> IO[bytes]:
        if self._handle is None or self._handle.closed:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open for random access
        return self._handle

    def close(self) -> None:
        """Close the file handle used for random access (reopened on demand)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> TFRecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        return state


# --------------------------------------------------------------------------------------------
# tf.train.Example wire format
# --------------------------------------------------------------------------------------------

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3

#: decoded feature: ``list[memoryview]`` (bytes_list, zero-copy slices of the record),
#: ``np.ndarray`` float32 (float_list) or ``np.ndarray`` int64 (int64_list)
FeatureValue: TypeAlias = list[memoryview] | np.ndarray
#: accepted by :func:`encode_example`: bytes (one value), a sequence of bytes, or numbers
FeatureInput: TypeAlias = (
    bytes | bytearray | memoryview | Sequence[bytes] | np.ndarray | Sequence[float] | int | float
)


class _WireError(Exception):
    """Malformed protocol buffer (internal; surfaced as DatasetError)."""


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns (value, position after it)."""
    value = 0
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _WireError(f"varint longer than 10 bytes at byte {pos}")
    raise _WireError(f"varint runs past the end at byte {pos}")


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The fields of one message in ``buf[start:end]`` as ``(number, wire type, a, b)``.

    Length-delimited and fixed-width fields give their byte span ``a:b``; varints give
    ``(value, 0)``. Written as one flat loop (with a one-byte varint fast path) because it
    runs for every field of every record.
    """
    out = []
    pos = start
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _read_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == _LEN:
            size = buf[pos] if pos < end else 0x80
            if size < 0x80:
                pos += 1
            else:
                size, pos = _read_varint(buf, pos, end)
            stop = pos + size
            if stop > end:
                raise _WireError(f"field {field} of {size} bytes runs past the end at byte {pos}")
            out.append((field, wire, pos, stop))
            pos = stop
        elif wire == _VARINT:
            value, pos = _read_varint(buf, pos, end)
            out.append((field, wire, value, 0))
        elif wire in (_I32, _I64):
            stop = pos + (4 if wire == _I32 else 8)
            if stop > end:
                raise _WireError(f"fixed-width field {field} runs past the end at byte {pos}")
            out.append((field, wire, pos, stop))
            pos = stop
        else:
            raise _WireError(f"unsupported wire type {wire} (field {field}) at byte {pos}")
    return out


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_bytes_list(buf: bytes, view: memoryview, start: int, end: int) -> list[memoryview]:
    return [
        view[a:b] for field, wire, a, b in _fields(buf, start, end) if field == 1 and wire == _LEN
    ]


def _decode_float_list(buf: bytes, view: memoryview, start: int, end: int) -> np.ndarray:
    parts: list[np.ndarray] = []
    for field, wire, a, b in _fields(buf, start, end):
        if field != 1:
            continue
        if wire == _LEN and (b - a) % 4:
            raise _WireError(f"packed float list of {b - a} bytes is not a multiple of 4")
        if wire not in (_LEN, _I32):  # packed, or one unpacked value
            raise _WireError(f"float list value with wire type {wire}")
        parts.append(np.frombuffer(view[a:b], dtype="<f4"))
    if len(parts) == 1:
        return parts[0].astype(np.float32)
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _decode_int64_list(buf: bytes, view: memoryview, start: int, end: int) -> np.ndarray:
    values: list[int] = []
    for field, wire, a, b in _fields(buf, start, end):
        if field != 1:
            continue
        if wire == _LEN:  # packed
            pos = a
            while pos < b:
                number, pos = _read_varint(buf, pos, b)
                values.append(_signed64(number))
        elif wire == _VARINT:  # unpacked
            values.append(_signed64(a))
        else:
            raise _WireError(f"int64 list value with wire type {wire}")
    return np.array(values, dtype=np.int64)


_LIST_DECODERS: dict[int, Callable[[bytes, memoryview, int, int], FeatureValue]] = {
    _BYTES_LIST: _decode_bytes_list,
    _FLOAT_LIST: _decode_float_list,
    _INT64_LIST: _decode_int64_list,
}


def _decode_feature(buf: bytes, view: memoryview, start: int, end: int) -> FeatureValue:
    """The value of one ``Feature`` (last kind wins, as in protobuf); ``[]`` when none is set."""
    result: FeatureValue = []
    for field, wire, a, b in _fields(buf, start, end):
        decoder = _LIST_DECODERS.get(field)
        if decoder is not None and wire == _LEN:
            result = decoder(buf, view, a, b)
    return result


_KIND_TAGS = {0x0A: _BYTES_LIST, 0x12: _FLOAT_LIST, 0x1A: _INT64_LIST}  # field 1, 2, 3 LEN


def _decode_entry_fast(
    buf: bytes, view: memoryview, s: int, e: int
) -> tuple[str, FeatureValue] | None:
    """One map entry in the usual encoding (key, then a value holding one list), else None.

    Records hold few features, so per-field Python overhead dominates decoding; this path
    reads the common layout directly and leaves everything else to the general decoder.
    """
    klen = buf[s + 1] if s + 1 < e and buf[s] == 0x0A else 0x80
    p = s + 2 + klen
    if klen >= 0x80 or p >= e or buf[p] != 0x12:
        return None
    vlen, p = _read_varint(buf, p + 1, e)
    if p + vlen != e:
        return None
    key = buf[s + 2 : s + 2 + klen].decode("utf-8")
    if vlen == 0:
        return key, []
    kind = _KIND_TAGS.get(buf[p])
    if kind is None:
        return None
    llen, q = _read_varint(buf, p + 1, e)
    if q + llen != e:
        return None
    if kind == _BYTES_LIST and llen and buf[q] == 0x0A:
        blen, r = _read_varint(buf, q + 1, e)
        if r + blen == e:
            return key, [view[r:e]]
    return key, _LIST_DECODERS[kind](buf, view, q, e)


def _decode_entry(buf: bytes, view: memoryview, s: int, e: int) -> tuple[str, FeatureValue]:
    """One ``map<string, Feature>`` entry, any valid encoding."""
    fast = _decode_entry_fast(buf, view, s, e)
    if fast is not None:
        return fast
    key, value = "", []  # type: tuple[str, FeatureValue]
    for field, wire, a, b in _fields(buf, s, e):
        if field == 1 and wire == _LEN:
            key = buf[a:b].decode("utf-8")
        elif field == 2 and wire == _LEN:
            value = _decode_feature(buf, view, a, b)
    return key, value


def decode_example(data: bytes | memoryview, *, source: str = "record") -> dict[str, FeatureValue]:
    """Decode a serialised ``tf.train.Example`` into ``{name: value}``.

    Values are ``list[memoryview]`` for bytes lists (zero-copy views of ``data``), float32
    arrays for float lists and int64 arrays for int64 lists. A feature present with no kind set
    decodes as an empty list. Raises :class:`DatasetError` naming ``source`` when the bytes are
    not a valid Example.
    """
    buf = data if isinstance(data, bytes) else bytes(data)
    view = memoryview(buf)
    features: dict[str, FeatureValue] = {}
    try:
        for field, wire, fs, fe in _fields(buf, 0, len(buf)):
            if field != 1 or wire != _LEN:
                continue
            for entry_field, entry_wire, s, e in _fields(buf, fs, fe):
                if entry_field != 1 or entry_wire != _LEN:
                    continue
                key, value = _decode_entry(buf, view, s, e)
                features[key] = value
    except (_WireError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{source}: not a valid tf.train.Example ({exc}); the file is damaged or holds "
            "another record type"
        ) from exc
    return features


def _varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int (negative int64 values: pass value + 2**64)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | _LEN) + _varint(len(payload)) + payload


def _encode_feature(value: FeatureInput) -> bytes:
    """Serialise one ``Feature``: bytes -> bytes_list; floats -> float_list; ints -> int64_list."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _len_field(_BYTES_LIST, _len_field(1, bytes(value)))
    if isinstance(value, list | tuple) and value and isinstance(value[0], bytes | bytearray):
        return _len_field(_BYTES_LIST, b"".join(_len_field(1, bytes(v)) for v in value))
    array = np.atleast_1d(np.asarray(value))
    if array.dtype.kind == "f":
        packed = array.astype("<f4").tobytes()
        return _len_field(_FLOAT_LIST, _len_field(1, packed) if array.size else b"")
    if array.dtype.kind in "iub":
        packed = b"".join(_varint(int(v) & 0xFFFFFFFFFFFFFFFF) for v in array.astype(np.int64))
        return _len_field(_INT64_LIST, _len_field(1, packed) if array.size else b"")
    raise DatasetError(f"cannot encode a feature of dtype {array.dtype}; use bytes, floats or ints")


def encode_example(features: Mapping[str, FeatureInput]) -> bytes:
    """Serialise ``{name: value}`` as a ``tf.train.Example`` (packed numbers, keys sorted).

    ``bytes`` become a one-value bytes list, a list of bytes a bytes list, float arrays or
    numbers a float list (float32) and integer arrays or numbers an int64 list.
    """
    entries = b"".join(
        _len_field(1, _len_field(1, name.encode("utf-8")) + _len_field(2, _encode_feature(value)))
        for name, value in sorted(features.items())
    )
    return _len_field(1, entries)
