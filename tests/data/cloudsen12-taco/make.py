"""Write tiny CloudSEN12 TACO parts in the real (v1, "tortilla"-based) format.

The published dataset is ``cloudsen12-l1c.NNNN.part.taco``, ``cloudsen12-l2a.NNNN.part.taco``
and ``cloudsen12-extra.NNNN.part.taco``: each row of a part's metadata table is one patch,
stored as a nested tortilla whose items are GeoTIFFs. Image parts hold the items ``s2l1c`` (or
``s2l2a``) first and ``target`` (the human label) second; the extra part holds the land cover,
elevation, SAR and the masks of other algorithms (item names below), one row per image row with
the same ``tortilla:id``.

The patches here are miniatures: a real patch of ``real_proj_shape`` 509 (or 2000) pixels is
stored on a 512 (2048) canvas with zeros on the left and bottom; these use the same geometry at
13 px on a 16 px canvas and 29 px on a 32 px canvas, so that the committed files stay small.

``write(root)`` rebuilds the parts with ``tacotoolbox`` 0.5.2 + ``pytortilla`` 0.5.1 (the
last toolbox that writes this format) when they are importable, else copies the committed parts
from ``parts/`` (made by ``python tests/data/cloudsen12-taco/make.py``), so that the tests
only need ``tacoreader``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
PARTS = HERE / "parts"
L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
L2A = tuple(b for b in L1C if b != "B10")
NODATA = 99
CRS = "EPSG:32610"

#: one dict per patch: its metadata columns (names as in the published table)
ROWS: tuple[dict[str, object], ...] = (
    {
        "id": "ROI_0001__20190414",
        "roi_id": "ROI_0001",
        "label_type": "high",
        "split": "test",
        "real": 13,
    },
    {
        "id": "ROI_0002__20200727",
        "roi_id": "ROI_0002",
        "label_type": "high",
        "split": "test",
        "real": 29,
    },
    {
        "id": "ROI_0003__20191013",
        "roi_id": "ROI_0003",
        "label_type": "scribble",
        "split": "train",
        "real": 13,
    },
    {
        "id": "ROI_0001__20200220",
        "roi_id": "ROI_0001",
        "label_type": "nolabel",
        "split": "validation",
        "real": 13,
    },
)
#: stored canvas for each real size (509 -> 512 and 2000 -> 2048 in the real dataset)
CANVAS = {13: 16, 29: 32}
#: items of the extra part: name -> dtype
EXTRA_ITEMS: dict[str, str] = {
    "lc10": "uint8",
    "elevation": "int16",
    "vv": "float32",
    "vh": "float32",
    "cloudmask_qa60": "uint16",
    "cloudmask_sen2cor": "uint8",
    "cloudmask_s2cloudless": "uint8",
    "cloudmask_cloudscore_cs_v1": "float32",
    "cloudmask_cloudscore_cs_cdf_v1": "float32",
    "cloudmask_unetmobv2_v1": "uint8",
    "cloudmask_unetmobv2_v2": "uint8",
    "cloudmask_sensei_v2": "uint8",
}


def real_window(real: int) -> tuple[slice, slice]:
    """Rows and columns of the real data on the canvas: zeros pad the left and the bottom."""
    canvas = CANVAS[real]
    return slice(0, real), slice(canvas - real, canvas)


def _pad(values: np.ndarray, real: int) -> np.ndarray:
    """``values`` (..., canvas, canvas) with zeros outside the real window."""
    rows, cols = real_window(real)
    out = np.zeros_like(values)
    out[..., rows, cols] = values[..., rows, cols]
    return out


def _grid(real: int) -> tuple[np.ndarray, np.ndarray]:
    canvas = CANVAS[real]
    return np.mgrid[0:canvas, 0:canvas]


def image_dn(index: int, level: str) -> np.ndarray:
    """(C, H, W) uint16 digital numbers: a level per band and sample, plus a small ramp."""
    real = int(ROWS[index]["real"])
    rows, cols = _grid(real)
    bands = L1C if level == "L1C" else L2A
    offset = 0 if level == "L1C" else -300
    stack = np.stack(
        [1000 + 150 * L1C.index(b) + 40 * index + offset + (rows + 2 * cols) % 7 for b in bands]
    )
    return _pad(stack.astype(np.uint16), real)


def target(index: int) -> np.ndarray:
    """(H, W) uint8 human label: quarters of classes 0-3; scribbles are 99 but for strips;
    nolabel patches are all 99. The pad holds 99 too (no label)."""
    row = ROWS[index]
    real = int(row["real"])
    rows, cols = _grid(real)
    labels = ((rows * 2 // real) * 2 + (cols * 2 // CANVAS[real]) + index) % 4
    if row["label_type"] == "scribble":
        labels = np.where(rows % 4 == 1, labels, NODATA)
    elif row["label_type"] == "nolabel":
        labels = np.full_like(labels, NODATA)
    out = np.full(labels.shape, NODATA, dtype=np.uint8)
    r, c = real_window(real)
    out[r, c] = labels[r, c]
    return out


def percentages(index: int) -> dict[str, float]:
    """Label shares (percent of the real window) as the published metadata columns."""
    r, c = real_window(int(ROWS[index]["real"]))
    labels = target(index)[r, c]
    labelled = max(int((labels != NODATA).sum()), 1)
    names = ("clear", "thick", "thin", "cloud_shadow")
    return {
        f"{name}_percentage": round(100.0 * float((labels == v).sum()) / labelled, 3)
        for v, name in enumerate(names)
    }


def extra_layer(index: int, name: str) -> np.ndarray:
    """(H, W) values of one extra item (deterministic; masks in their own schemes)."""
    real = int(ROWS[index]["real"])
    rows, cols = _grid(real)
    ramp = (rows + cols + index) % 4
    values: dict[str, np.ndarray] = {
        "lc10": np.where(ramp == 0, 70, 10),
        "elevation": 100 * index + cols,
        "vv": -20.0 + rows / 4.0,
        "vh": -25.0 + cols / 4.0,
        "cloudmask_qa60": np.array([0, 1024, 2048, 0])[ramp],
        "cloudmask_sen2cor": np.array([4, 9, 10, 3])[ramp],
        "cloudmask_s2cloudless": (ramp % 2 == 1).astype(int),
        "cloudmask_cloudscore_cs_v1": np.array([0.9, 0.2, 0.5, 0.7])[ramp],
        "cloudmask_cloudscore_cs_cdf_v1": np.array([0.95, 0.1, 0.4, 0.8])[ramp],
        "cloudmask_unetmobv2_v1": ramp,
        "cloudmask_unetmobv2_v2": (ramp + 1) % 4,
        "cloudmask_sensei_v2": np.where(ramp == 3, 0, ramp),
    }
    return values[name].astype(EXTRA_ITEMS[name])


def transform(index: int) -> tuple[float, ...]:
    """The GDAL geotransform of a patch (10 m pixels, UTM 10N)."""
    return (663300.0 + 10000.0 * index, 10.0, 0.0, 6375870.0, 0.0, -10.0)


def _write_tif(path: Path, data: np.ndarray, index: int, names: tuple[str, ...] = ()) -> Path:
    import rasterio
    from affine import Affine

    stack = data if data.ndim == 3 else data[None]
    profile = {
        "driver": "GTiff",
        "height": stack.shape[1],
        "width": stack.shape[2],
        "count": stack.shape[0],
        "dtype": str(stack.dtype),
        "crs": CRS,
        "transform": Affine.from_gdal(*transform(index)),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(stack)
        for band, name in enumerate(names, start=1):
            dst.set_band_description(band, name)
    return path


def _sample_tortilla(work: Path, index: int, items: list[tuple[str, Path]]) -> Path:
    """One patch as a nested tortilla of its GeoTIFF items."""
    import pytortilla

    samples = pytortilla.datamodel.Samples(
        samples=[
            pytortilla.datamodel.Sample(id=name, file_format="GTiff", path=path)
            for name, path in items
        ]
    )
    out = work / f"{ROWS[index]['id']}.{items[0][0]}.tortilla"
    return Path(pytortilla.create(samples=samples, output=out, nworkers=1, quiet=True))


def _patch_sample(index: int, path: Path) -> object:
    import pytortilla

    row = ROWS[index]
    real = int(row["real"])
    return pytortilla.datamodel.Sample(
        id=str(row["id"]),
        file_format="TORTILLA",
        path=path,
        data_split=row["split"],
        stac_data={
            "crs": CRS,
            "geotransform": transform(index),
            "raster_shape": (CANVAS[real], CANVAS[real]),
            "time_start": 1555200000 + 86400 * index,
        },
        roi_id=row["roi_id"],
        old_roi_id=f"OLD_{row['roi_id']}",
        label_type=row["label_type"],
        real_proj_shape=real,
        s2_id=f"S2A_MSIL1C_2019041{index}T191919_N0207_R099_T10VFJ",
        **percentages(index),
    )


def _collection(flavour: str) -> object:
    import tacotoolbox

    return tacotoolbox.datamodel.Collection(
        id=f"cloudsen12{flavour}",
        dataset_version="1.1.2",
        description=f"Miniature of the CloudSEN12 {flavour} TACO parts for the s2clouds tests",
        licenses=["cc0-1.0"],
        extent={
            "spatial": [[-180.0, -90.0, 180.0, 90.0]],
            "temporal": [["2018-01-01T00:00:00Z", "2021-01-01T00:00:00Z"]],
        },
        providers=[{"name": "s2clouds tests", "roles": ["processor"]}],
        task="semantic-segmentation",
    )


def _write_part(root: Path, work: Path, flavour: str, parts: int) -> None:
    import pytortilla
    import tacotoolbox

    patches = []
    for index in range(len(ROWS)):
        if flavour == "extra":
            items = [
                (name, _write_tif(work / f"{index}_{name}.tif", extra_layer(index, name), index))
                for name in EXTRA_ITEMS
            ]
        else:
            level = flavour.upper()
            bands = L1C if level == "L1C" else L2A
            image = _write_tif(
                work / f"{index}_{flavour}.tif", image_dn(index, level), index, bands
            )
            label = _write_tif(work / f"{index}_{flavour}_target.tif", target(index), index)
            items = [(f"s2{flavour}", image), ("target", label)]
        patches.append(_patch_sample(index, _sample_tortilla(work, index, items)))
    sizes = [p.path.stat().st_size for p in patches]
    # the toolbox starts a new part when the next patch would pass chunk_size
    chunk_kb = -(-max(max(sizes), -(-sum(sizes) // parts)) // 1000)
    tacotoolbox.create(
        collection=_collection(flavour),
        samples=pytortilla.datamodel.Samples(samples=patches),
        output=root / f"cloudsen12-{flavour}.taco",
        nworkers=1,
        chunk_size=f"{chunk_kb}KB",
        quiet=True,
    )


def generate(root: Path) -> Path:
    """Build the parts with tacotoolbox: L1C in two parts, L2A and extra in one each."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _write_part(root, work, "l1c", 2)
        _write_part(root, work, "l2a", 1)
        _write_part(root, work, "extra", 1)
    single = {"l2a", "extra"}
    for flavour in single:  # as published: every part is NNNN.part.taco
        plain = root / f"cloudsen12-{flavour}.taco"
        if plain.exists():
            plain.rename(root / f"cloudsen12-{flavour}.0000.part.taco")
    return root


def write(root: Path) -> Path:
    """The TACO parts under ``root``: generated when tacotoolbox is importable, else copied."""
    root = Path(root)
    try:
        import pytortilla  # noqa: F401
        import tacotoolbox  # noqa: F401
    except ImportError:
        root.mkdir(parents=True, exist_ok=True)
        for part in sorted(PARTS.glob("*.taco")):
            shutil.copy(part, root / part.name)
        return root
    return generate(root)


if __name__ == "__main__":
    target_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else PARTS
    if target_dir.exists():
        for old in target_dir.glob("*.taco"):
            old.unlink()
    generate(target_dir)
    for part in sorted(target_dir.glob("*.taco")):
        print(f"{part.name}: {part.stat().st_size} bytes")
