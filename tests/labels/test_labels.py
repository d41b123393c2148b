import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.errors import LabelSchemeError
from s2clouds.io.labels import translate_raster
from s2clouds.labels import (
    CANONICAL_CLASSES,
    CLEAR,
    CLOUD_SHADOW,
    NODATA,
    SCHEMES,
    THICK_CLOUD,
    THIN_CLOUD,
    correspondence_table,
    decode_one_hot,
    from_canonical,
    get_scheme,
    to_canonical,
    translate,
)

SEEDS = (
    Path(__file__).resolve().parents[3] / "shared" / "seeds" / "cloudsen12_high_quality_card.txt"
)
CARD_COLUMNS = ["cloudsen12", "kappamask", "sen2cor", "fmask", "s2cloudless", "cd_fcnn", "qa60"]


def _card_table() -> dict[int, dict[str, set[int]]]:
    """Parse the label correspondence table of the CloudSEN12 card: canonical -> scheme -> values."""
    text = SEEDS.read_text()
    start = text.index("### **Label Description**")
    rows = [r for r in text[start:].splitlines()[1:] if r.startswith("|")][2:]
    table: dict[int, dict[str, set[int]]] = {}
    current = -1
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if cells[0]:
            current = int(cells[0].split()[0])
            table[current] = {name: set() for name in CARD_COLUMNS}
        for name, cell in zip(CARD_COLUMNS, cells, strict=True):
            m = re.match(r"(\d+)", cell)
            if m:
                table[current][name].add(int(m.group(1)))
    return table


@pytest.mark.skipif(not SEEDS.exists(), reason="seed card not present")
def test_tables_match_the_cloudsen12_card() -> None:
    table = _card_table()
    assert set(table) == set(CANONICAL_CLASSES)
    for canonical, per_scheme in table.items():
        for name, values in per_scheme.items():
            scheme = get_scheme(name)
            for value in values:
                assert scheme.to_canonical[value] == canonical, (name, value)


@pytest.mark.parametrize("name", [n for n in SCHEMES])
def test_every_scheme_round_trips_its_representatives(name: str) -> None:
    scheme = SCHEMES[name]
    for canonical in CANONICAL_CLASSES:
        value = scheme.from_canonical[canonical]
        back = scheme.to_canonical[value]
        if back != canonical:
            # the only merges a scheme may make: thin into thick cloud, shadow into clear
            assert (canonical, back) in {(THIN_CLOUD, THICK_CLOUD), (CLOUD_SHADOW, CLEAR)}, (
                name,
                canonical,
                back,
            )
            assert scheme.lossy, f"{name} merges {canonical} into {back} without declaring it"


def test_lossless_schemes_round_trip_exactly() -> None:
    mask = np.array([[0, 1, 2, 3, NODATA]], dtype=np.uint8)
    for name in ("canonical", "kappamask", "spatiotemporal"):
        fill = None if get_scheme(name).nodata is not None else 7
        back = to_canonical(from_canonical(mask, name, fill=fill), name, unknown="nodata")
        np.testing.assert_array_equal(back, mask)


def test_translation_examples() -> None:
    scl = np.array([4, 8, 9, 10, 3, 11, 0], dtype=np.uint8)
    np.testing.assert_array_equal(to_canonical(scl, "sen2cor"), [0, 1, 1, 2, 3, 0, NODATA])
    qa = np.array([0, 1024, 2048, 3072], dtype=np.uint16)
    np.testing.assert_array_equal(translate(qa, "qa60", "kappamask"), [1, 4, 3, 4])
    np.testing.assert_array_equal(
        translate(np.array([0, 1, 2, 3], np.uint8), "canonical", "s2cloudless"), [0, 1, 1, 0]
    )
    int8 = np.array([0, 1, 2, 3], dtype=np.int8)
    np.testing.assert_array_equal(to_canonical(int8, "cloudsen12"), [0, 1, 2, 3])
    st = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64)
    np.testing.assert_array_equal(to_canonical(st, "spatiotemporal"), [0, 1, 2, 2, 3, 0])


def test_unknown_values_and_schemes() -> None:
    with pytest.raises(LabelSchemeError, match=r"values \[7\]"):
        to_canonical(np.array([0, 7], np.uint8), "s2cloudless")
    assert to_canonical(np.array([0, 7], np.uint8), "s2cloudless", unknown="nodata").tolist() == [
        0,
        NODATA,
    ]
    with pytest.raises(LabelSchemeError, match="unknown label scheme"):
        get_scheme("nope")
    with pytest.raises(LabelSchemeError, match="no no-data value"):
        from_canonical(np.array([NODATA], np.uint8), "s2cloudless")


def test_one_hot_decoding() -> None:
    onehot = np.zeros((2, 2, 3), bool)
    onehot[0, 0, 0] = onehot[0, 1, 1] = onehot[1, 0, 2] = True
    np.testing.assert_array_equal(decode_one_hot(onehot), [[0, 1], [2, NODATA]])


def test_correspondence_table_lists_every_scheme() -> None:
    rows = correspondence_table()
    assert len(rows) == 5
    assert "10 thin cirrus" in rows[2]["sen2cor"]
    assert "2048" in rows[2]["qa60"]


def test_translate_raster_keeps_georeference(tmp_path: Path) -> None:
    src = tmp_path / "scl.tif"
    transform = Affine(20, 0, 300000, 0, -20, 5000000)
    data = np.array([[4, 9], [10, 3]], dtype=np.uint8)
    with rasterio.open(
        src,
        "w",
        driver="GTiff",
        height=2,
        width=2,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=transform,
    ) as ds:
        ds.write(data, 1)
    out = translate_raster(src, tmp_path / "canon.tif", "sen2cor", "canonical")
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == transform
        np.testing.assert_array_equal(ds.read(1), [[0, 1], [2, 3]])
        assert ds.colormap(1)[3][:3] == (120, 60, 0)


def test_cloudsen12_padding_translates_to_no_data() -> None:
    from s2clouds.labels import to_canonical, translate

    stored = np.array([[0, 1, 2, 3, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(to_canonical(stored, "cloudsen12"), [[0, 1, 2, 3, 255]])
    as_int8 = np.array([[0, 3, -1]], dtype=np.int8)  # the card's int8: the pad reads -1
    np.testing.assert_array_equal(to_canonical(as_int8, "cloudsen12"), [[0, 3, 255]])
    np.testing.assert_array_equal(translate(as_int8, "cloudsen12", "sen2cor"), [[4, 3, 0]])
