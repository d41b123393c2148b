"""TFRecord framing, CRC-32C and tf.train.Example decoding without TensorFlow."""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np
import pytest

from s2clouds.datasets import tfrecord
from s2clouds.datasets.tfrecord import (
    FeatureInput,
    TFRecordFile,
    crc32c,
    decode_example,
    encode_example,
    encode_record,
    iter_records,
    masked_crc32c,
    scan_index,
    write_records,
)
from s2clouds.errors import DatasetError

#: tf.train.Example {"a": Int64List [1]} serialised by hand from the wire format:
#: Example.features (0a 0c) > Features.feature entry (0a 0a) > key "a" (0a 01 61)
#: > value Feature (12 05) > int64_list (1a 03) > packed value [1] (0a 01 01)
KNOWN_EXAMPLE = b"\x0a\x0c\x0a\x0a\x0a\x01a\x12\x05\x1a\x03\x0a\x01\x01"


def test_crc32c_matches_the_standard_check_value() -> None:
    # CRC-32C check value of "123456789" (RFC 3720 / Castagnoli)
    assert crc32c(b"123456789") == 0xE3069283
    assert tfrecord._crc32c_numpy(b"123456789") == 0xE3069283


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000, 4097, 141_120 + 7])
def test_numpy_crc32c_fallback_agrees_with_bytewise_reference(n: int) -> None:
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    reference = tfrecord._register_bytewise(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    assert tfrecord._crc32c_numpy(data) == reference == crc32c(data)


def test_masked_crc_rotates_and_adds_the_tfrecord_constant() -> None:
    crc = 0xE3069283
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == (rotated + 0xA282EAD8) & 0xFFFFFFFF


def test_record_framing_layout() -> None:
    framed = encode_record(KNOWN_EXAMPLE)
    length = struct.pack("<Q", len(KNOWN_EXAMPLE))
    assert framed[:8] == length
    assert framed[8:12] == struct.pack("<I", masked_crc32c(length))
    assert framed[12:-4] == KNOWN_EXAMPLE
    assert framed[-4:] == struct.pack("<I", masked_crc32c(KNOWN_EXAMPLE))


def test_encoder_produces_the_hand_built_example_and_decoder_reads_it() -> None:
    assert encode_example({"a": np.array([1])}) == KNOWN_EXAMPLE
    decoded = decode_example(KNOWN_EXAMPLE)
    assert list(decoded) == ["a"]
    np.testing.assert_array_equal(decoded["a"], [1])


def test_decoder_accepts_unpacked_numbers_and_negative_int64() -> None:
    # Int64List unpacked: 08 05 08 <-1 as 10-byte varint>; FloatList unpacked: 0d <1.5f>
    minus_one = b"\xff" * 9 + b"\x01"
    int64_list = b"\x08\x05\x08" + minus_one
    float_list = b"\x0d" + struct.pack("<f", 1.5) + b"\x0d" + struct.pack("<f", -2.0)
    bytes_list = b"\x0a\x02hi\x0a\x00"

    def entry(key: bytes, feature: bytes) -> bytes:
        body = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
        return b"\x0a" + bytes([len(body)]) + body

    features = (
        entry(b"i", b"\x1a" + bytes([len(int64_list)]) + int64_list)
        + entry(b"f", b"\x12" + bytes([len(float_list)]) + float_list)
        + entry(b"b", b"\x0a" + bytes([len(bytes_list)]) + bytes_list)
    )
    example = b"\x0a" + bytes([len(features)]) + features
    decoded = decode_example(example)
    np.testing.assert_array_equal(decoded["i"], [5, -1])
    assert isinstance(decoded["i"], np.ndarray) and decoded["i"].dtype == np.int64
    np.testing.assert_array_equal(decoded["f"], np.array([1.5, -2.0], np.float32))
    assert [bytes(v) for v in decoded["b"]] == [b"hi", b""]


def test_round_trip_of_every_feature_kind() -> None:
    image = np.arange(2 * 4 * 3, dtype="<u2").reshape(2, 4, 3)
    features: dict[str, FeatureInput] = {
        "raw": image.tobytes(),
        "names": [b"x", b"yz"],
        "floats": np.array([0.25, -3.5, 1e30], dtype=np.float32),
        "ints": np.array([0, -5, 2**62, -(2**63)], dtype=np.int64),
        "empty": np.zeros(0, dtype=np.int64),
    }
    decoded = decode_example(encode_example(features))
    assert np.frombuffer(decoded["raw"][0], "<u2").reshape(2, 4, 3).tolist() == image.tolist()
    assert [bytes(v) for v in decoded["names"]] == [b"x", b"yz"]
    np.testing.assert_array_equal(decoded["floats"], features["floats"])
    np.testing.assert_array_equal(decoded["ints"], features["ints"])
    empty = decoded["empty"]
    assert isinstance(empty, np.ndarray) and empty.dtype == np.int64 and empty.size == 0
    assert decode_example(b"\x0a\x07\x0a\x05\x0a\x01e\x12\x00") == {"e": []}  # no kind set


def _example_message_class():
    """tf.train.Example built from a descriptor with the protobuf package (no generated code)."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(
        name="s2c_example.proto", package="s2ctest", syntax="proto3"
    )
    label_rep = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    label_opt = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    t = descriptor_pb2.FieldDescriptorProto
    for name, kind in (
        ("BytesList", t.TYPE_BYTES),
        ("FloatList", t.TYPE_FLOAT),
        ("Int64List", t.TYPE_INT64),
    ):
        msg = f.message_type.add(name=name)
        msg.field.add(name="value", number=1, type=kind, label=label_rep)
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (fname, tname) in enumerate(
        (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")),
        start=1,
    ):
        feature.field.add(
            name=fname,
            number=number,
            type=t.TYPE_MESSAGE,
            label=label_opt,
            type_name=f".s2ctest.{tname}",
            oneof_index=0,
        )
    features = f.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=t.TYPE_STRING, label=label_opt)
    entry.field.add(
        name="value", number=2, type=t.TYPE_MESSAGE, label=label_opt, type_name=".s2ctest.Feature"
    )
    features.field.add(
        name="feature",
        number=1,
        type=t.TYPE_MESSAGE,
        label=label_rep,
        type_name=".s2ctest.Features.FeatureEntry",
    )
    example = f.message_type.add(name="Example")
    example.field.add(
        name="features",
        number=1,
        type=t.TYPE_MESSAGE,
        label=label_opt,
        type_name=".s2ctest.Features",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("s2ctest.Example"))


def test_agrees_with_the_protobuf_library_both_ways() -> None:
    Example = _example_message_class()
    msg = Example()
    msg.features.feature["img"].bytes_list.value.append(b"\x01\x02\x03\x04")
    msg.features.feature["w"].float_list.value.extend([0.5, 2.0])
    msg.features.feature["id"].int64_list.value.extend([7, -9])
    decoded = decode_example(msg.SerializeToString())
    assert bytes(decoded["img"][0]) == b"\x01\x02\x03\x04"
    np.testing.assert_array_equal(decoded["w"], [0.5, 2.0])
    np.testing.assert_array_equal(decoded["id"], [7, -9])

    ours = encode_example(
        {"img": b"\x01\x02\x03\x04", "w": np.array([0.5, 2.0]), "id": np.array([7, -9])}
    )
    parsed = Example.FromString(ours)
    assert parsed.SerializeToString(deterministic=True) == ours
    assert list(parsed.features.feature["id"].int64_list.value) == [7, -9]


def _records(n: int) -> list[bytes]:
    return [encode_example({"i": np.array([i]), "pad": bytes(37 * i)}) for i in range(n)]


def test_file_round_trip_random_access_and_streaming(tmp_path) -> None:
    path = tmp_path / "data.tfrecord"
    records = _records(5)
    assert write_records(path, records) == 5
    index = scan_index(path)
    assert index.offsets[0] == 0
    assert index.lengths.tolist() == [len(r) for r in records]
    with TFRecordFile(path) as f:
        assert len(f) == 5
        assert f[3] == records[3]
        assert f[-1] == records[-1]
        assert list(f) == records
        f[0]
        clone = pickle.loads(pickle.dumps(f))  # open handle is not pickled
        assert clone[2] == records[2]


def test_iter_records_reads_lazily_from_a_stream() -> None:
    blob = b"".join(encode_record(r) for r in _records(50))

    class CountingStream(io.BytesIO):
        consumed = 0

        def read(self, size: int | None = -1) -> bytes:
            out = super().read(size)
            CountingStream.consumed += len(out)
            return out

    stream = CountingStream(blob)
    it = iter_records(stream, source="mem")
    first_offset, first = next(it)
    assert first_offset == 0 and first == _records(1)[0]
    assert CountingStream.consumed == len(encode_record(first))  # nothing read ahead
    assert sum(1 for _ in it) == 49


def _damaged_copy(tmp_path, position: int | None = None, truncate: int | None = None):
    path = tmp_path / "bad.tfrecord"
    write_records(path, _records(4))
    data = bytearray(path.read_bytes())
    if position is not None:
        data[position] ^= 0xFF
    if truncate is not None:
        data = data[:truncate]
    path.write_bytes(bytes(data))
    return path


def test_data_crc_mismatch_names_file_and_offset(tmp_path) -> None:
    third = sum(len(encode_record(r)) for r in _records(2))
    path = _damaged_copy(tmp_path, position=third + 12 + 3)
    f = TFRecordFile(path)
    assert f[1] == _records(2)[1]
    with pytest.raises(
        DatasetError, match=rf"bad\.tfrecord.*CRC mismatch in the data.*byte {third}"
    ):
        f[2]
    with pytest.raises(DatasetError, match=f"byte {third}"):
        list(f)
    assert TFRecordFile(path, verify=False)[2] != _records(3)[2]  # checks can be switched off


def test_length_crc_mismatch_is_reported(tmp_path) -> None:
    path = _damaged_copy(tmp_path, position=1)
    with pytest.raises(DatasetError, match="CRC mismatch in the length of the record at byte 0"):
        scan_index(path)


@pytest.mark.parametrize("cut", [5, 20, -2])
def test_truncated_file_is_reported(tmp_path, cut: int) -> None:
    total = sum(len(encode_record(r)) for r in _records(4))
    last = total - len(encode_record(_records(4)[3]))
    path = _damaged_copy(tmp_path, truncate=total + cut if cut < 0 else last + cut)
    with pytest.raises(DatasetError, match=rf"bad\.tfrecord: truncated .* at byte {last}"):
        scan_index(path)
    with pytest.raises(DatasetError, match="truncated"), open(path, "rb") as stream:
        list(iter_records(stream, source=str(path)))


def test_malformed_example_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match="rec 3: not a valid tf.train.Example"):
        decode_example(b"\x0a\x7f\x0a", source="rec 3")
    with pytest.raises(DatasetError, match="wire type"):
        decode_example(b"\x0b")


def test_reader_works_without_google_crc32c(tmp_path, monkeypatch) -> None:
    path = tmp_path / "data.tfrecord"
    write_records(path, _records(3))
    expected = list(TFRecordFile(path))
    monkeypatch.setattr(tfrecord, "_FAST_CRC32C", None)  # as if the package were missing
    assert crc32c(b"123456789") == 0xE3069283
    assert list(TFRecordFile(path)) == expected
