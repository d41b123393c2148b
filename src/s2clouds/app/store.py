"""Saved annotations: per user and image, the mask and the scribbles as GeoTIFFs on the
image's grid (canonical classes, 255 unlabelled) and a small JSON of the session (time
spent, when saved), each written atomically under ``<project>/annotations/<user>/``.
Also the progress table, agreement scores and the export for ``s2clouds train``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.app.project import Project, ProjectError
from s2clouds.benchmark.metrics import f1_score, iou, tp_fp_fn
from s2clouds.io.grid import Grid
from s2clouds.io.write import atomic_path, write_mask
from s2clouds.labels import CANONICAL_CLASSES, NODATA, from_canonical, get_scheme, to_canonical


def annotation_paths(project: Project, user: str, image_id: str) -> dict[str, Path]:
    """Where ``user``'s annotation of ``image_id`` lives (both checked against the project)."""
    project.image(image_id)
    folder = project.annotation_dir(user)
    return {
        "mask": folder / f"{image_id}.tif",
        "scribbles": folder / f"{image_id}.scribbles.tif",
        "meta": folder / f"{image_id}.json",
    }


def _refuse_links(paths: dict[str, Path]) -> None:
    for path in paths.values():
        if path.is_symlink():
            raise ProjectError(f"{path} is a symlink; the app writes only plain files")


def read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        data = json.loads(path.read_text()[:100_000])
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_annotation(
    project: Project,
    user: str,
    image_id: str,
    grid: Grid,
    mask: np.ndarray,
    scribbles: np.ndarray,
    seconds: float = 0.0,
) -> dict[str, Path]:
    """Write ``user``'s ``mask`` and ``scribbles`` of ``image_id`` (canonical uint8, 255
    unlabelled) on ``grid``, and add ``seconds`` to the time spent on it."""
    for name, values in (("mask", mask), ("scribbles", scribbles)):
        bad = ~np.isin(values, [*CANONICAL_CLASSES, NODATA])
        if np.any(bad):
            raise ProjectError(f"the {name} holds values outside 0-3 and 255: refused")
    paths = annotation_paths(project, user, image_id)
    folder = paths["mask"].parent
    folder.mkdir(parents=True, exist_ok=True)
    project.annotation_dir(user)  # again, now that it exists: no symlink out
    _refuse_links(paths)
    meta = read_meta(paths["meta"])
    total = float(meta.get("seconds", 0.0)) + max(0.0, min(float(seconds), 86_400.0))
    tags = {"ANNOTATOR": user, "IMAGE_ID": image_id, "PROJECT": project.name}
    write_mask(paths["scribbles"], scribbles.astype(np.uint8), grid, tags=tags)
    write_mask(paths["mask"], mask.astype(np.uint8), grid, tags=tags)
    labelled = float(np.mean(mask != NODATA)) if mask.size else 0.0
    record = {
        "user": user,
        "image": image_id,
        "seconds": round(total, 1),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "labelled": round(labelled, 4),
        "classes": {
            CANONICAL_CLASSES[c]: int(n)
            for c, n in enumerate(np.bincount(mask.ravel(), minlength=256)[:4])
            if n
        },
    }
    with atomic_path(paths["meta"]) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return paths


def read_mask_file(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        values = ds.read(1)
    if shape is not None and values.shape != shape:
        raise ProjectError(f"{path} is {values.shape} px, the image {shape}")
    return np.asarray(values)


def load_annotation(
    project: Project, user: str, image_id: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``user``'s saved (mask, scribbles) of ``image_id``, None when not saved yet."""
    paths = annotation_paths(project, user, image_id)
    if not paths["mask"].is_file() or paths["mask"].is_symlink():
        return None
    mask = read_mask_file(paths["mask"])
    scribbles = (
        read_mask_file(paths["scribbles"], mask.shape)
        if paths["scribbles"].is_file() and not paths["scribbles"].is_symlink()
        else np.full(mask.shape, NODATA, np.uint8)
    )
    return mask, scribbles


def progress(project: Project) -> list[dict[str, Any]]:
    """One row per image: per user whether it is saved, the share labelled and time spent."""
    rows = []
    for image in project.images:
        users = {}
        for user in project.users:
            meta = read_meta(annotation_paths(project, user, image.id)["meta"])
            users[user] = {
                "saved": bool(meta),
                "seconds": meta.get("seconds", 0.0),
                "saved_at": meta.get("saved_at"),
                "labelled": meta.get("labelled", 0.0),
            }
        rows.append({"image": image.id, "reference": image.reference is not None, "users": users})
    return rows


def scores(a: np.ndarray, b: np.ndarray, classes: dict[int, str]) -> dict[str, Any]:
    """F1 and IoU per class of label rasters ``a`` against ``b`` over pixels both define."""
    values = np.asarray(list(classes))
    both = np.isin(a, values) & np.isin(b, values)
    out: dict[str, Any] = {"pixels": int(both.sum()), "classes": {}}
    x, y = a[both], b[both]
    confusion = _confusion(y, x, values)
    tp, fp, fn = tp_fp_fn(confusion)
    f1, jaccard = f1_score(confusion), iou(confusion)
    for i, name in enumerate(classes.values()):
        if tp[i] + fp[i] + fn[i] > 0:
            out["classes"][name] = {
                "f1": round(float(f1[i]), 4),
                "iou": round(float(jaccard[i]), 4),
            }
    out["accuracy"] = round(float(np.mean(x == y)), 4) if x.size else None
    return out


def _confusion(truth: np.ndarray, predicted: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(K, K) counts, rows ``truth`` and columns ``predicted``, over the class ``values``."""
    order = np.argsort(values)  # the j-th smallest value is class order[j]
    t = order[np.searchsorted(values[order], truth)]
    p = order[np.searchsorted(values[order], predicted)]
    k = values.size
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def agreement(
    project: Project,
    image_id: str,
    shape: tuple[int, int],
    reference: tuple[np.ndarray, str] | None,
) -> dict[str, Any]:
    """Scores of every pair of users who saved ``image_id``, and of each against the
    image's reference mask ``reference`` (values on the image's grid, scheme; compared in
    that scheme, e.g. binary cloud), which ``load_image`` reads from ``project.yaml``."""
    masks = {}
    for user in project.users:
        saved = load_annotation(project, user, image_id)
        if saved is not None and saved[0].shape == shape:
            masks[user] = saved[0]
    result: dict[str, Any] = {"image": image_id, "pairs": [], "reference": []}
    users = sorted(masks)
    for i, first in enumerate(users):
        for second in users[i + 1 :]:
            result["pairs"].append(
                {"a": first, "b": second, **scores(masks[first], masks[second], CANONICAL_CLASSES)}
            )
    if reference is not None:
        scheme = get_scheme(reference[1])
        if reference[0].shape != shape:
            raise ProjectError(
                f"the reference of {image_id} is {reference[0].shape} px, not {shape}"
            )
        values = to_canonical(reference[0], scheme, unknown="nodata")
        values = from_canonical(values, scheme, fill=NODATA)
        classes = {v: n for v, n in scheme.classes.items() if v != scheme.nodata}
        for user in users:
            mine = from_canonical(masks[user], scheme, fill=NODATA)
            result["reference"].append(
                {"user": user, "scheme": scheme.name, **scores(mine, values, classes)}
            )
    return result


def export(
    project: Project,
    output: Path,
    scheme: str = "cloudsen12",
    users: tuple[str, ...] | None = None,
    *,
    bands: bool = True,
) -> list[Path]:
    """Write every saved mask as ``<output>/<image>/label.tif`` in ``scheme`` on the image's
    grid, with the image's bands beside it (``B02.tif``, ... uint16 DN = reflectance x 10000,
    0 no data) unless ``bands`` is False: chip folders ready for ``s2clouds train --dataset
    chips OUTPUT -O scheme=SCHEME``. One user: per image the first of ``users`` (default:
    the project's) who saved it; several ``users``: ``<output>/<user>/<image>/...``.
    Nothing read (images, references, saved masks) is overwritten. Returns the labels."""
    from s2clouds.app.images import load_image
    from s2clouds.io.paths import check_outputs

    target = get_scheme(scheme)
    chosen = users or project.users
    unknown = [u for u in chosen if u not in project.users]
    if unknown:
        raise ProjectError(f"user(s) {', '.join(unknown)} are not in the project's users")
    per_user = users is not None and len(users) > 1
    plan: list[tuple[str, str, Path, Path]] = []  # image, user, saved mask, chip folder
    for image in project.images:
        for user in chosen:
            mask_path = annotation_paths(project, user, image.id)["mask"]
            if mask_path.is_file() and not mask_path.is_symlink():
                folder = output / user / image.id if per_user else output / image.id
                plan.append((image.id, user, mask_path, folder))
                if not per_user:
                    break
    written = []
    for image_id, user, mask_path, folder in plan:
        loaded = load_image(project.image(image_id)) if bands else None
        outputs: dict[str, Path | None] = {"label": folder / "label.tif"}
        if loaded is not None:
            outputs |= {band: folder / f"{band}.tif" for band in loaded.bands}
        inputs: list[str | Path | None] = [mask_path, project.image(image_id).reference]
        if loaded is not None and loaded.scene is not None:
            inputs += list(loaded.scene.input_files())
        check_outputs(outputs, inputs)
        folder.mkdir(parents=True, exist_ok=True)
        mask = read_mask_file(mask_path)
        grid = _mask_grid(mask_path)
        _write_single(
            folder / "label.tif",
            grid,
            from_canonical(mask, target, fill=NODATA),
            nodata=target.nodata if target.nodata is not None else NODATA,
            name="label",
            tags={"LABEL_SCHEME": target.name, "ANNOTATOR": user, "IMAGE_ID": image_id},
            band_tags={f"CLASS_{v}": n for v, n in target.classes.items()},
        )
        if loaded is not None:
            for i, band in enumerate(loaded.bands):
                values = loaded.reflectance[i]
                dn = np.where(
                    np.isfinite(values), np.clip(np.round(values * 10_000), 1, 65_535), 0
                ).astype(np.uint16)
                _write_single(folder / f"{band}.tif", grid, dn, nodata=0, name=band)
        written.append(folder / "label.tif")
    return written


def _mask_grid(path: Path) -> Grid:
    import rasterio

    with rasterio.open(path) as ds:
        return Grid(ds.crs, ds.transform, ds.height, ds.width)


def _write_single(
    path: Path,
    grid: Grid,
    values: np.ndarray,
    *,
    nodata: float,
    name: str,
    tags: dict[str, str] | None = None,
    band_tags: dict[str, str] | None = None,
) -> None:
    from s2clouds.io.write import RasterWriter

    writer = RasterWriter(
        path,
        grid,
        dtype=str(values.dtype),
        nodata=nodata,
        band_names=(name,),
        tags=tags,
        band_tags=band_tags,
    )
    with writer:
        writer.write(grid.full_window(), values)
