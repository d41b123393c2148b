"""Translate label rasters on disk, window by window, keeping georeference."""

from __future__ import annotations

from pathlib import Path

from s2clouds.errors import SceneFormatError
from s2clouds.io.grid import Grid
from s2clouds.io.limits import check_regular_file
from s2clouds.io.paths import check_outputs
from s2clouds.io.write import RasterWriter
from s2clouds.labels.catalogue import get_scheme
from s2clouds.labels.schemes import CANONICAL_COLOURS
from s2clouds.labels.translate import translate


def translate_raster(
    source: str | Path,
    output: str | Path,
    from_scheme: str,
    to_scheme: str,
    *,
    unknown: str = "error",
) -> Path:
    """Translate band 1 of ``source`` from ``from_scheme`` to ``to_scheme`` into a COG ``output``.

    The output keeps the input's CRS and transform; no data is the target scheme's no-data
    value (255 when it has none). Canonical output gets the canonical colour table.
    """
    import rasterio

    check_regular_file(source)
    check_outputs({"the output (output=)": output}, [source])
    src_scheme, dst_scheme = get_scheme(from_scheme), get_scheme(to_scheme)
    try:
        ds = rasterio.open(source)
    except rasterio.errors.RasterioIOError as exc:
        raise SceneFormatError(f"cannot open {source}: {exc}") from exc
    with ds:
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
        fill = dst_scheme.nodata if dst_scheme.nodata is not None else 255
        top = max(max(dst_scheme.from_canonical.values()), fill)
        writer = RasterWriter(
            output,
            grid,
            dtype="uint8" if top <= 255 else "uint16",
            nodata=fill,
            colormap=CANONICAL_COLOURS if dst_scheme.name == "canonical" else None,
            tags={"LABEL_SCHEME": dst_scheme.name, "TRANSLATED_FROM": src_scheme.name},
            band_tags={f"CLASS_{v}": n for v, n in dst_scheme.classes.items()},
        )
        with writer:
            for window in grid.windows(2048):
                block = ds.read(1, window=window.to_rasterio())
                writer.write(
                    window, translate(block, src_scheme, dst_scheme, unknown=unknown, fill=fill)
                )
    return Path(output)


__all__ = ["translate_raster"]
