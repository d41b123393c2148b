"""Build a training set folder without CloudSEN12: synthetic clouds on real clear surfaces,
plus real chips pseudo-labelled where peer maskers agree.

Output layout (read it with ``ChipFolders(OUT, scheme="canonical")``, or
``s2clouds datasets info OUT -O scheme=canonical``)::

    OUT/<chip>/{B02.tif, B03.tif, ..., label.tif}   uint16 DN (reflectance x 10000, 0 = no
                                                     data); label.tif canonical (0 clear,
                                                     1 thick, 2 thin, 3 shadow, 255 ignore)
    OUT/manifest.csv                                 one row per chip: kind, source, window
    OUT/PROVENANCE.md                                real data, licences, exclusions, settings

Sources (from ``--real``, default ``../shared/data/real`` beside the repository):

* pseudo-labels: the real images (all their bands) through ``--maskers`` with the ``agree``
  rule, cut into ``--size`` tiles; On Cloud N tiles also drop pixels where the pseudo-label
  and the human label disagree on cloud;
* clear surfaces: windows of the On Cloud N chips where the human label is clear (0) and of
  the s2cloudless L1C test scene where its (algorithmic) ``cl_mask`` is 0, less the pixels
  that the agreeing maskers call cloud or shadow (the human labels have no shadow class);
  pixels within ``--cloud-buffer`` of a non-clear pixel become no data (label 255).

Anything named in ``--exclude`` (e.g. a held-out evaluation chip) is never read.

    python scripts/build_training_set.py --out /tmp/trainset --exclude oncloudn_chip3
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from scipy import ndimage

import s2clouds
from s2clouds.bands import L1C_BANDS, canonical_band_names
from s2clouds.datasets.chips import ChipFolders
from s2clouds.datasets.synthetic import LabelRules, SyntheticClouds
from s2clouds.errors import S2CloudsError
from s2clouds.io.grid import Grid, Window
from s2clouds.io.scenes import Scene, read_scene
from s2clouds.io.write import RasterWriter, write_mask
from s2clouds.labels.schemes import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD
from s2clouds.train.pseudolabels import (
    DEFAULT_MASKERS,
    PseudoLabelled,
    agree_with_reference,
    labels_from_reference,
)

REAL_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
S2CLOUDLESS_SCENE = "s2cloudless_l1c_scene"
S2CLOUDLESS_RESOLUTION = 10.0  # not recorded with the scene; assumed
LICENCES = {
    "oncloudn": (
        "Radiant Earth Foundation (2022), Sentinel-2 Cloud Cover Segmentation Dataset "
        "(On Cloud N), v1, doi:10.34911/RDNT.HFQ6M7: imagery and human labels, CC BY 4.0 "
        "(attribution required); contains modified Copernicus Sentinel-2 data 2020"
    ),
    "s2cloudless": (
        "s2cloudless 1.2.2 source distribution, TestInputs/input_arrays.npz (L1C image and "
        "the s2cloudless 0.1 cloud mask, algorithmic): CC BY-SA 4.0 (ShareAlike: chips "
        "derived from it are adaptations under CC BY-SA 4.0); contains modified Copernicus "
        "Sentinel-2 data"
    ),
}
MASKER_LICENCES = {
    "ukis-csmask": "ukis-csmask 1.0 (DLR) network weights from its PyPI package, Apache-2.0",
    "ukis-csmask@native": "ukis-csmask 1.0 (DLR) network weights from its PyPI package, run "
    "at 10 m, Apache-2.0",
    "physical": "s2clouds physical scores (SEN12MS cloud/shadow scores), no weights",
    "s2cloudless": "s2cloudless (Sentinel Hub) model from its PyPI package, CC BY-SA 4.0",
}
NOT_CLEAR = [THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW]


@dataclass
class RealImage:
    """One real input: a scene (all its bands), optional canonical reference labels (H, W),
    the pixels its own labels call clear (H, W) bool, and its pseudo-labels once computed."""

    name: str
    scene: Scene
    clear: np.ndarray
    reference: np.ndarray | None
    licence: str
    pseudo: np.ndarray | None = None


@dataclass
class Build:
    """What went into the output folder (for the manifest and PROVENANCE.md)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    surfaces: dict[str, int] = field(default_factory=dict)
    pseudo: dict[str, int] = field(default_factory=dict)
    #: "<real item> <row>,<col>" of each synthetic surface window, by surface index
    surface_origins: list[str] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--real", type=Path, default=REAL_DEFAULT, help="folder of real data")
    p.add_argument("--exclude", default="", help="comma list of real items never to read")
    p.add_argument("--bands", default="B02,B03,B04,B08", help="bands written per chip")
    p.add_argument("--size", type=int, default=128, help="chip edge in pixels")
    p.add_argument("--synthetic", type=int, default=400, help="number of synthetic chips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-clear", type=float, default=0.8, help="clear share of a surface window")
    p.add_argument("--cloud-buffer", type=int, default=8, help="pixels kept away from clouds")
    p.add_argument(
        "--thin-alpha",
        type=float,
        default=LabelRules().thin_alpha,
        help="synthetic cloud opacity from which a pixel is labelled (thin) cloud",
    )
    p.add_argument("--stride", type=int, default=32, help="step between surface windows")
    p.add_argument("--maskers", default=",".join(DEFAULT_MASKERS), help="pseudo-label maskers")
    p.add_argument("--min-labelled", type=float, default=0.5, help="labelled share of a tile")
    p.add_argument("--no-pseudo", action="store_true", help="synthetic chips only")
    p.add_argument(
        "--real-repeat",
        type=int,
        default=1,
        help="write each real (pseudo-labelled) tile this many times, so that training "
        "draws real imagery as often as that",
    )
    p.add_argument(
        "--human-labels",
        action="store_true",
        help="On Cloud N tiles: cloud from the human labels (shadow from the pseudo-labels) "
        "instead of pseudo-labels vetoed by them",
    )
    p.add_argument("--cache", type=Path, default=None, help="pseudo-label cache folder")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    return p.parse_args(argv)


def names_in(text: str) -> list[str]:
    """Items of a comma-separated option."""
    return [item.strip() for item in text.split(",") if item.strip()]


# ------------------------------------------------------------------------------ real inputs
def real_items(real: Path) -> list[str]:
    """Names of the real items present: On Cloud N chip folders and the s2cloudless scene."""
    chips = sorted(p.name for p in real.glob("oncloudn_chip*") if (p / "label.tif").is_file())
    scene = [S2CLOUDLESS_SCENE] if (real / S2CLOUDLESS_SCENE / "input_arrays.npz").is_file() else []
    return chips + scene


def check_exclusions(excluded: set[str], present: list[str]) -> None:
    """Refuse exclusion names that match nothing: a typo must not leak a held-out chip."""
    unknown = sorted(excluded - set(present))
    if unknown:
        raise SystemExit(
            f"--exclude names {', '.join(unknown)} match no real item; present: "
            f"{', '.join(present)}"
        )


def load_oncloudn(real: Path, names: list[str]) -> list[RealImage]:
    """The On Cloud N chips ``names`` with their human labels (canonical)."""
    chips = ChipFolders(real, scheme="binary")
    images = []
    for i, chip in enumerate(chips.chips):
        if chip.name in names:
            reference = chips[i]["mask_canonical"]
            images.append(
                RealImage(
                    chip.name, read_scene(chip), reference == CLEAR, reference, LICENCES["oncloudn"]
                )
            )
    return images


def load_s2cloudless(real: Path) -> RealImage:
    """The s2cloudless L1C test scene (13 bands) and its s2cloudless clear mask."""
    with np.load(real / S2CLOUDLESS_SCENE / "input_arrays.npz") as data:
        image = np.moveaxis(data["s2_im"][0], -1, 0).astype(np.float32)
        cl_mask = data["cl_mask"][0]
    scene = read_scene(image, bands=L1C_BANDS, resolution=S2CLOUDLESS_RESOLUTION, level="L1C")
    return RealImage(S2CLOUDLESS_SCENE, scene, cl_mask == 0, None, LICENCES["s2cloudless"])


def load_real(args: argparse.Namespace) -> list[RealImage]:
    """Every real item present and not excluded."""
    present = real_items(args.real)
    if not present:
        raise SystemExit(f"{args.real} holds no On Cloud N chip nor the s2cloudless scene")
    excluded = set(names_in(args.exclude))
    check_exclusions(excluded, present)
    keep = [n for n in present if n not in excluded]
    images = load_oncloudn(args.real, [n for n in keep if n.startswith("oncloudn")])
    if S2CLOUDLESS_SCENE in keep:
        images.append(load_s2cloudless(args.real))
    return images


# ---------------------------------------------------------------------------- pseudo-labels
def add_pseudo_labels(images: list[RealImage], args: argparse.Namespace) -> None:
    """Set ``image.pseudo``: agreeing maskers' labels, less cloud disagreements with the
    image's own reference labels (On Cloud N)."""
    dataset = PseudoLabelled(
        [im.scene for im in images], maskers=names_in(args.maskers), cache=args.cache
    )
    merge = labels_from_reference if args.human_labels else agree_with_reference
    for i, image in enumerate(images):
        mask = dataset[i]["mask"]
        if image.reference is not None:
            mask = merge(mask, image.reference)
        image.pseudo = mask


# ------------------------------------------------------------------------- clear surfaces
def clear_pixels(image: RealImage, buffer: int) -> np.ndarray:
    """(H, W) bool: clear by the image's labels, not cloud or shadow by its pseudo-labels,
    and at least ``buffer`` pixels away from any pixel that is not."""
    other = ~image.clear
    if image.pseudo is not None:
        other |= np.isin(image.pseudo, NOT_CLEAR)
    if buffer > 0:
        other = ndimage.binary_dilation(other, iterations=buffer)
    return ~other


def clear_windows(clear: np.ndarray, size: int, stride: int, min_clear: float) -> list[Window]:
    """``size`` windows (every ``stride`` pixels) whose clear share is at least ``min_clear``."""
    height, width = clear.shape
    windows = []
    for row in range(0, height - size + 1, stride):
        for col in range(0, width - size + 1, stride):
            if clear[row : row + size, col : col + size].mean() >= min_clear:
                windows.append(Window(row, col, size, size))
    return windows


def surface_of(
    image: RealImage, clear: np.ndarray, window: Window, bands: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(C, size, size) reflectance of ``window`` in ``bands``, NaN where not ``clear``."""
    data = image.scene.select(bands).read(window)
    data[:, ~clear[window.slices]] = np.nan
    return data, bands


def collect_surfaces(
    images: list[RealImage], args: argparse.Namespace, bands: tuple[str, ...], build: Build
) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    """Clear surface windows of every real image (see :func:`clear_pixels`)."""
    surfaces = []
    for image in images:
        clear = clear_pixels(image, args.cloud_buffer)
        windows = clear_windows(clear, args.size, args.stride, args.min_clear)
        build.surfaces[image.name] = len(windows)
        build.surface_origins += [f"{image.name} {w.row},{w.col}" for w in windows]
        surfaces += [surface_of(image, clear, w, bands) for w in windows]
    if not surfaces:
        raise SystemExit(
            f"no {args.size} px window is at least {args.min_clear:.0%} clear; lower --min-clear "
            "or --size, or include more real items"
        )
    return surfaces


# --------------------------------------------------------------------------------- writing
def to_dn(image: np.ndarray) -> np.ndarray:
    """Reflectance (C, H, W) -> uint16 DN x 10000; NaN -> 0 (no data), real zeros -> 1."""
    dn = np.clip(np.rint(np.nan_to_num(image, nan=0.0) * 10000), 1, 65535).astype(np.uint16)
    dn[~np.isfinite(image)] = 0
    return dn


def write_chip(
    folder: Path,
    image: np.ndarray,
    bands: tuple[str, ...],
    mask: np.ndarray,
    grid: Grid,
    tags: dict[str, str],
) -> None:
    """One chip folder: a uint16 GeoTIFF per band and the canonical ``label.tif``."""
    folder.mkdir(parents=True, exist_ok=True)
    window = grid.full_window()
    for band, plane in zip(bands, to_dn(image), strict=True):
        with RasterWriter(
            folder / f"{band}.tif", grid, dtype="uint16", nodata=0, band_names=(band,), tags=tags
        ) as writer:
            writer.write(window, plane)
    write_mask(folder / "label.tif", mask, grid, tags=tags)


def sun_tags(zenith: float | None, azimuth: float | None) -> dict[str, str]:
    """``SUN_ZENITH``/``SUN_AZIMUTH`` tags (read back by ``read_band_folder``) when known."""
    if zenith is None or azimuth is None:
        return {}
    return {"SUN_ZENITH": f"{zenith:.3f}", "SUN_AZIMUTH": f"{azimuth:.3f}"}


def write_synthetic(
    surfaces: list[tuple[np.ndarray, tuple[str, ...]]],
    args: argparse.Namespace,
    bands: tuple[str, ...],
    build: Build,
) -> None:
    """``--synthetic`` chips ``syn_<i>`` from :class:`SyntheticClouds` on ``surfaces``."""
    dataset = SyntheticClouds(
        surfaces,
        bands=bands,
        n=args.synthetic,
        size=args.size,
        seed=args.seed,
        resolution=10.0,
        rules=LabelRules(thin_alpha=args.thin_alpha),
    )
    for i in range(len(dataset)):
        sample = dataset[i]
        meta = sample["meta"]
        res = meta["resolution"]
        grid = Grid(None, Affine(res, 0, 0, 0, -res, 0), args.size, args.size)
        chip = f"syn_{i:05d}"
        tags = {"S2CLOUDS_KIND": "synthetic", **sun_tags(meta["sun_zenith"], meta["sun_azimuth"])}
        write_chip(args.out / chip, sample["image"], bands, sample["mask"], grid, tags)
        build.rows.append(
            {"chip": chip, "kind": "synthetic", "source": build.surface_origins[meta["surface"]]}
            | {"clouds": meta["kind"]}
            | {k: meta[k] for k in ("coverage", "cloud_height_m", "sun_zenith", "sun_azimuth")}
        )


def tiles(shape: tuple[int, int], size: int) -> Iterator[Window]:
    """Non-overlapping full ``size`` windows over ``shape`` (the ragged edge is dropped)."""
    for row in range(0, shape[0] - size + 1, size):
        for col in range(0, shape[1] - size + 1, size):
            yield Window(row, col, size, size)


def write_pseudo(
    images: list[RealImage], args: argparse.Namespace, bands: tuple[str, ...], build: Build
) -> None:
    """Chips ``pl_<item>_<row>_<col>``: tiles of the real images with their pseudo-labels."""
    for image in images:
        if image.pseudo is None:
            continue
        scene = image.scene.select(bands)
        angles = scene.angles
        tags = {"S2CLOUDS_KIND": "pseudo", "SOURCE": image.name}
        if angles is not None:
            tags |= sun_tags(angles.sun_zenith, angles.sun_azimuth)
        written = 0
        for window in tiles(image.pseudo.shape, args.size):
            tile_mask = image.pseudo[window.slices]
            if np.mean(tile_mask != NODATA) < args.min_labelled:
                continue
            tile_grid = Grid(
                scene.grid.crs, scene.grid.window_transform(window), args.size, args.size
            )
            chip = f"pl_{image.name}_{window.row:04d}_{window.col:04d}"
            data = scene.read(window)
            for copy in range(args.real_repeat):
                name = chip if copy == 0 else f"{chip}_r{copy}"
                write_chip(args.out / name, data, bands, tile_mask, tile_grid, tags)
                build.rows.append(
                    {
                        "chip": name,
                        "kind": "pseudo" if copy == 0 else "pseudo-repeat",
                        "source": f"{image.name} {window.row},{window.col}",
                    }
                )
            written += 1
        build.pseudo[image.name] = written


# ------------------------------------------------------------------------------ provenance
def provenance(
    args: argparse.Namespace, images: list[RealImage], bands: tuple[str, ...], build: Build
) -> str:
    """PROVENANCE.md: what real data and licences went in, what was excluded, how."""
    used = sorted(im.name for im in images)
    families = sorted({"s2cloudless" if n == S2CLOUDLESS_SCENE else "oncloudn" for n in used})
    maskers = [] if args.no_pseudo else names_in(args.maskers)
    lines = [
        "# Provenance of this training set",
        "",
        f"Built {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} by "
        f"`scripts/build_training_set.py` (s2clouds {s2clouds.__version__}).",
        f"Command: `{' '.join(sys.argv)}`",
        "",
        f"Chips: {args.size} x {args.size} px at 10 m, bands {', '.join(bands)}, uint16 DN "
        "(reflectance x 10000, 0 = no data); `label.tif` in the s2clouds canonical scheme "
        "(0 clear, 1 thick cloud, 2 thin cloud, 3 cloud shadow, 255 ignore). Read with "
        '`ChipFolders(root, scheme="canonical")` '
        "(CLI: `s2clouds datasets info ROOT -O scheme=canonical`).",
        "",
        "## Real data used",
        *[
            f"- `{n}`: {build.surfaces.get(n, 0)} clear surface windows, "
            f"{build.pseudo.get(n, 0)} pseudo-labelled tiles"
            for n in used
        ],
        "",
        "## Excluded (never read)",
        *([f"- `{n}`" for n in sorted(names_in(args.exclude))] or ["- nothing"]),
        "",
        "## Licences",
        *[f"- {LICENCES[f]}" for f in families],
        *[f"- pseudo-labels: {MASKER_LICENCES.get(m, m + ' (see its licence)')}" for m in maskers],
        "",
        "## How",
        f"- {args.synthetic} synthetic chips (`syn_*`, seed {args.seed}): "
        "`s2clouds.datasets.synthetic.SyntheticClouds` on clear surface windows "
        f"(>= {args.min_clear:.0%} clear; pixels within {args.cloud_buffer} px of a "
        "non-clear pixel are no data, label 255). Clear means label 0 for On Cloud N (human "
        "labels, which have no shadow class) and `cl_mask == 0` for the s2cloudless scene "
        "(algorithmic, not ground truth; its resolution is not recorded and is taken as "
        f"{S2CLOUDLESS_RESOLUTION:g} m)"
        + (", less pixels the agreeing maskers call cloud or shadow." if maskers else ".")
        + f" Labels: cloud from opacity {args.thin_alpha:g} (thin), thick above "
        f"{LabelRules().thick_alpha:g}.",
    ]
    if maskers:
        lines.append(
            f"- pseudo-labelled tiles (`pl_*`): maskers {', '.join(maskers)} must agree "
            "(`s2clouds.train.pseudolabels`, rule 'agree'), run on the whole real image "
            f"with all its bands; tiles with < {args.min_labelled:.0%} labelled pixels are "
            "dropped; "
            + (
                f"each tile is written {args.real_repeat} times (`_r<k>` copies) so that "
                "training sees real imagery more often; "
                if args.real_repeat > 1
                else ""
            )
            + (
                "On Cloud N tiles take cloud from the human labels (thin where the maskers "
                "say thin) and shadow from the maskers; the rest of them is clear "
                "(`labels_from_reference`): the human labels are training data."
                if args.human_labels
                else "On Cloud N tiles are also 255 where the pseudo-label and the human "
                "label disagree on cloud."
            )
        )
    lines.append("- `manifest.csv` lists every chip with its source.")
    return "\n".join(lines) + "\n"


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise SystemExit(f"{out} is not empty; choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.real_repeat < 1:
        raise SystemExit("--real-repeat must be at least 1")
    build = Build()
    try:
        bands = canonical_band_names(names_in(args.bands))
        prepare_output(args.out, args.overwrite)
        images = load_real(args)
        if not args.no_pseudo:
            add_pseudo_labels(images, args)
        write_synthetic(collect_surfaces(images, args, bands, build), args, bands, build)
        write_pseudo(images, args, bands, build)
    except S2CloudsError as exc:
        raise SystemExit(f"error: {exc}") from exc
    write_manifest(args.out / "manifest.csv", build.rows)
    (args.out / "PROVENANCE.md").write_text(provenance(args, images, bands, build))
    kinds = [row["kind"] for row in build.rows]
    print(
        f"wrote {len(kinds)} chips to {args.out} ({kinds.count('synthetic')} synthetic, "
        f"{kinds.count('pseudo')} pseudo-labelled)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
