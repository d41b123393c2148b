"""Translate label rasters between schemes through the canonical scheme, with lookup tables."""

from __future__ import annotations

import numpy as np

from s2clouds.errors import LabelSchemeError
from s2clouds.labels.catalogue import SCHEMES, get_scheme
from s2clouds.labels.schemes import CANONICAL_CLASSES, NODATA, LabelScheme

_UNMAPPED = -1


def _lookup_table(mapping: dict[int, int], dtype: np.dtype) -> np.ndarray:
    """A LUT over every bit pattern of an 8- or 16-bit integer dtype, -1 where unmapped."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    lut = np.full(2 ** (8 * dtype.itemsize), _UNMAPPED, dtype=np.int16)
    info = np.iinfo(dtype)
    for value, target in mapping.items():
        if info.min <= value <= info.max:
            lut[np.array(value, dtype=dtype).view(unsigned)] = target
    return lut


def _apply_mapping(values: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Map every element through ``mapping``; elements without an entry become -1 (int16)."""
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        lut = _lookup_table(mapping, values.dtype)
        return np.asarray(lut[values.view(f"u{values.dtype.itemsize}")])
    if values.dtype.kind == "b":
        return _apply_mapping(values.astype(np.uint8), mapping)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not np.all(values[finite] == np.round(values[finite])):
            raise LabelSchemeError("label raster holds fractional values; labels must be integers")
        values = np.where(finite, values, -(2**31)).astype(np.int64)
    uniques, inverse = np.unique(values, return_inverse=True)
    mapped = np.array([mapping.get(int(u), _UNMAPPED) for u in uniques], dtype=np.int16)
    return mapped[inverse].reshape(values.shape)


def _refuse_unmapped(values: np.ndarray, mapped: np.ndarray, scheme: LabelScheme) -> None:
    bad = mapped == _UNMAPPED
    if np.any(bad):
        found = np.unique(values[bad])[:10]
        raise LabelSchemeError(
            f"values {found.tolist()} are not part of the {scheme.name!r} scheme "
            f"(it defines {sorted(scheme.classes)}); check the scheme they are given in, or pass unknown='nodata'"
        )


def to_canonical(
    mask: np.ndarray, scheme: str | LabelScheme, *, unknown: str = "error"
) -> np.ndarray:
    """Translate a label raster ``(H, W)`` (any integer dtype) to canonical ``uint8`` values.

    ``unknown='error'`` refuses values the scheme does not define; ``unknown='nodata'`` maps
    them to 255.
    """
    src = get_scheme(scheme)
    mask = np.asarray(mask)
    mapped = _apply_mapping(mask, dict(src.to_canonical))
    if unknown == "error":
        _refuse_unmapped(mask, mapped, src)
    elif unknown != "nodata":
        raise LabelSchemeError("unknown= must be 'error' or 'nodata'")
    mapped[mapped == _UNMAPPED] = NODATA
    return mapped.astype(np.uint8)


def from_canonical(
    mask: np.ndarray, scheme: str | LabelScheme, *, fill: int | None = None
) -> np.ndarray:
    """Translate a canonical raster to ``scheme`` values.

    Canonical no-data becomes the scheme's no-data value, or ``fill`` when the scheme has none
    (then ``fill`` is required if no-data occurs). The output dtype is the smallest that holds
    the scheme's values.
    """
    dst = get_scheme(scheme)
    mask = np.asarray(mask)
    nodata_value = dst.nodata if dst.nodata is not None else fill
    mapping = dict(dst.from_canonical)
    if nodata_value is not None:
        mapping[NODATA] = nodata_value
    mapped = _apply_mapping(mask.astype(np.uint8) if mask.dtype.kind == "b" else mask, mapping)
    if np.any(mapped == _UNMAPPED):
        found = np.unique(mask[mapped == _UNMAPPED])[:10].tolist()
        hint = f"; {dst.name!r} has no no-data value, pass fill=" if NODATA in found else ""
        raise LabelSchemeError(f"canonical raster holds values {found} outside 0-3 and 255{hint}")
    top = max(max(mapping.values()), 0)
    return mapped.astype(np.uint8 if top <= 255 else np.uint16)


def translate(
    mask: np.ndarray,
    source: str | LabelScheme,
    target: str | LabelScheme,
    *,
    unknown: str = "error",
    fill: int | None = None,
) -> np.ndarray:
    """Translate a label raster from ``source`` to ``target`` through the canonical scheme."""
    return from_canonical(to_canonical(mask, source, unknown=unknown), target, fill=fill)


def decode_one_hot(onehot: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Decode a one-hot (or multi-hot) boolean stack into class indices ``uint8``.

    The first set channel wins; pixels with no channel set become 255 (no data). Used for the
    Cloud Mask Catalogue masks ``(H, W, 3)`` CLEAR, CLOUD, CLOUD_SHADOW.
    """
    arr = np.moveaxis(np.asarray(onehot).astype(bool), axis, 0)
    out = np.argmax(arr, axis=0).astype(np.uint8)
    out[~arr.any(axis=0)] = NODATA
    return np.asarray(out)


def correspondence_table(schemes: list[str] | None = None) -> list[dict[str, str]]:
    """Rows per canonical class: which values of each scheme map to it.

    Returns one dict per canonical class (and one for no data) with the canonical label under
    ``"canonical"`` and, per scheme, the stored values and names joined by ``"; "``.
    """
    chosen = [get_scheme(s) for s in (schemes or [n for n in SCHEMES if n != "canonical"])]
    rows = []
    for value, name in [*CANONICAL_CLASSES.items(), (NODATA, "no data")]:
        row = {"canonical": f"{value} {name}"}
        for scheme in chosen:
            row[scheme.name] = "; ".join(
                f"{v} {scheme.classes.get(v, 'no data')}" for v in scheme.values_for(value)
            )
        rows.append(row)
    return rows
