"""The annotation app's API through FastAPI's test client: tiles, assistant, saves,
progress, agreement, export, and the security rules (ids only, no paths; symlinks out,
sizes and tokens refused)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.app.images import least_certain_region

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("lightgbm")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from s2clouds.app.project import load_project  # noqa: E402
from s2clouds.app.server import create_app  # noqa: E402
from s2clouds.cli.main import cli  # noqa: E402

SIZE = 64
Q = SIZE // 4  # the synthetic scene's cloud block is rows/cols [Q, 2Q)


def client(folder: Path, **kwargs: object) -> TestClient:
    """A client that sends the app's X-S2clouds header, as its front end does."""
    app = create_app(load_project(folder), **kwargs)  # type: ignore[arg-type]
    return TestClient(app, headers={"X-S2clouds": "1"})


def strokes() -> np.ndarray:
    s = np.full((SIZE, SIZE), 255, np.uint8)
    s[50:52, 5:60] = 0  # vegetation
    s[Q + 3 : Q + 5, Q + 2 : 2 * Q - 2] = 1  # inside the cloud block
    return s


def test_the_pages_are_served_with_a_strict_policy(synthetic_project: Path) -> None:
    c = client(synthetic_project)
    for url in ("/", "/progress", "/static/app.js", "/static/app.css"):
        response = c.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    assert b'src="static/app.js"' in c.get("/").content


def test_project_and_image_info(synthetic_project: Path) -> None:
    c = client(synthetic_project)
    info = c.get("/api/project").json()
    assert info["users"] == ["alice", "bob"] and [i["id"] for i in info["images"]] == ["scene"]
    image = c.get("/api/images/scene").json()
    assert (image["width"], image["height"]) == (SIZE, SIZE)
    # no SWIR, no B10: only the views the bands allow
    assert [v["name"] for v in image["views"]] == ["truecolor", "nir", "ndvi"]


@pytest.mark.parametrize("view", ["truecolor", "nir", "ndvi"])
def test_tiles_are_stretched_pngs(synthetic_project: Path, view: str) -> None:
    c = client(synthetic_project)
    response = c.get(f"/api/images/scene/tiles/{view}/0/0/0.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    tile = np.asarray(Image.open(io.BytesIO(response.content)))
    assert tile.shape == (256, 256, 4)
    inside = tile[:SIZE, :SIZE, :3]
    assert inside.min() < 30 and inside.max() > 225  # stretched, neither all white nor black
    assert np.all(tile[SIZE:, :, 3] == 0)  # transparent outside the image
    low = np.asarray(
        Image.open(
            io.BytesIO(c.get(f"/api/images/scene/tiles/{view}/0/0/0.png?lo=0&hi=100").content)
        )
    )
    assert not np.array_equal(low, tile)  # manual stretch


def test_tiles_outside_or_unknown_are_404(synthetic_project: Path) -> None:
    c = client(synthetic_project)
    assert c.get("/api/images/scene/tiles/truecolor/0/1/0.png").status_code == 404
    assert c.get("/api/images/scene/tiles/falsecolor/0/0/0.png").status_code == 404  # no B12
    assert c.get("/api/images/scene/tiles/truecolor/0/0/0.png?lo=50&hi=10").status_code == 400


TRAVERSAL = [
    "/api/images/..%2f..%2fetc%2fpasswd",
    "/api/images/%2Fetc%2Fpasswd",
    "/api/images/..",
    "/api/images/scene%2F..%2F..%2Fproject.yaml/tiles/truecolor/0/0/0.png",
    "/api/images/scene/annotation?user=..%2F..%2Fetc",
    "/api/images/scene/annotation?user=%2Fetc%2Fpasswd",
    "/static/..%2Fserver.py",
    "/static/%2Fetc%2Fpasswd",
    "/static/project.py",
    "/etc/passwd",
    "/..%2F..%2Fproject.yaml",
]


@pytest.mark.parametrize("url", TRAVERSAL)
def test_paths_in_requests_are_refused(synthetic_project: Path, url: str) -> None:
    response = client(synthetic_project).get(url)
    assert response.status_code == 404
    assert b"root:" not in response.content and b"import" not in response.content


def test_writing_through_a_symlink_out_of_the_project_is_refused(
    synthetic_project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (synthetic_project / "annotations").mkdir()
    (synthetic_project / "annotations" / "alice").symlink_to(outside)
    body = strokes().tobytes() * 2
    response = client(synthetic_project).put(
        "/api/images/scene/annotation?user=alice", content=body
    )
    assert response.status_code == 400 and "leads out of the project" in response.json()["error"]
    assert not any(outside.iterdir())
    # a symlinked annotations folder too
    (synthetic_project / "annotations" / "alice").unlink()
    (synthetic_project / "annotations").rmdir()
    (synthetic_project / "annotations").symlink_to(outside)
    response = client(synthetic_project).put("/api/images/scene/annotation?user=bob", content=body)
    assert response.status_code == 400
    assert not any(outside.iterdir())


def test_request_sizes_are_limited(synthetic_project: Path) -> None:
    c = client(synthetic_project, max_body=10_000)
    url = "/api/images/scene/annotation?user=alice"
    assert c.put(url, content=b"\0" * 20_000).status_code == 413  # over the server's cap
    c = client(synthetic_project)
    assert c.put(url, content=b"\0" * (2 * SIZE * SIZE + 1)).status_code == 413
    assert c.put(url, content=b"\0" * 10).status_code == 400
    assert c.post("/api/images/scene/predict", content=b"\0" * (SIZE * SIZE * 4)).status_code == 413


def test_cross_site_requests_are_refused(synthetic_project: Path) -> None:
    app = create_app(load_project(synthetic_project))
    bare = TestClient(app)  # no X-S2clouds header: what a form or a page of another site sends
    body = strokes().tobytes()
    for method, url in (
        ("post", "/api/images/scene/predict"),
        ("put", "/api/images/scene/annotation?user=alice"),
    ):
        response = getattr(bare, method)(url, content=body * (2 if method == "put" else 1))
        assert response.status_code == 403
    assert not (synthetic_project / "annotations").exists()
    foreign = client(synthetic_project).post(
        "/api/images/scene/predict", content=body, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    same = client(synthetic_project).post(
        "/api/images/scene/predict", content=body, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 200
    assert bare.get("/api/project").status_code == 200  # reading needs no header
    preflight = bare.options(
        "/api/images/scene/predict",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_token_is_required_when_given(synthetic_project: Path) -> None:
    c = client(synthetic_project, token="s3cret")
    assert c.get("/api/project").status_code == 401
    assert c.get("/api/project?token=wrong").status_code == 401
    assert c.get("/api/project", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = c.get("/api/project?token=s3cret")
    assert first.status_code == 200 and "s2clouds_token" in first.headers["set-cookie"]
    assert c.get("/api/project").status_code == 200  # the cookie now carries it


def test_foreign_host_headers_are_refused(synthetic_project: Path) -> None:
    c = client(synthetic_project, allowed_hosts=["127.0.0.1", "localhost"])
    assert c.get("/api/project", headers={"host": "evil.example"}).status_code == 400
    assert c.get("/api/project", headers={"host": "127.0.0.1:8765"}).status_code == 200


def test_predict_proposes_the_mask_and_where_to_label_next(synthetic_project: Path) -> None:
    c = client(synthetic_project)
    response = c.post("/api/images/scene/predict", content=strokes().tobytes())
    assert response.status_code == 200, response.text
    body = response.json()
    mask = np.frombuffer(base64.b64decode(body["mask"]), np.uint8).reshape(SIZE, SIZE)
    assert np.mean(mask[Q : 2 * Q, Q : 2 * Q] == 1) > 0.9  # the cloud block
    assert np.mean(mask[40:, :] == 0) > 0.9
    region = body["next"]
    confidence = np.frombuffer(base64.b64decode(body["confidence"]), np.uint8)
    expected = least_certain_region(
        confidence.reshape(SIZE, SIZE).astype(np.float32) / 255, strokes(), mask != 255
    )
    assert region == expected  # the least certain, mostly unlabelled block
    assert 0 <= region["row"] <= SIZE - region["height"] and region["height"] >= 16
    assert body["scribbled"] == {"clear": 110, "thick cloud": 24}


def test_predict_needs_two_classes(synthetic_project: Path) -> None:
    s = np.full((SIZE, SIZE), 255, np.uint8)
    s[50:52, 5:60] = 0
    response = client(synthetic_project).post("/api/images/scene/predict", content=s.tobytes())
    assert response.status_code == 400 and "two classes" in response.json()["error"]


def test_flood_fill_grows_within_tolerance(synthetic_project: Path) -> None:
    c = client(synthetic_project)
    body = c.get(f"/api/images/scene/flood?row={Q + 4}&col={Q + 4}&tolerance=0.2").json()
    region = np.frombuffer(base64.b64decode(body["region"]), np.uint8).reshape(
        body["height"], body["width"]
    )
    assert region[Q + 4 - body["row"], Q + 4 - body["col"]] == 1
    assert 0 < body["pixels"] < SIZE * SIZE
    assert c.get("/api/images/scene/flood?row=999&col=0").status_code == 400


def test_save_load_progress_agreement_and_export(synthetic_project: Path, tmp_path: Path) -> None:
    c = client(synthetic_project)
    s = strokes()
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[Q : 2 * Q, Q : 2 * Q] = 1
    url = "/api/images/scene/annotation"
    assert c.get(f"{url}?user=alice").status_code == 204  # nothing saved yet
    saved = c.put(f"{url}?user=alice&seconds=30", content=mask.tobytes() + s.tobytes())
    assert saved.status_code == 200 and saved.json()["saved"] == "annotations/alice/scene.tif"
    bob = mask.copy()
    bob[Q : 2 * Q, Q : Q + 4] = 2  # bob calls part of the cloud thin
    assert c.put(f"{url}?user=bob", content=bob.tobytes() + s.tobytes()).status_code == 200
    # the GeoTIFF is on the image's grid
    with (
        rasterio.open(synthetic_project / "annotations/alice/scene.tif") as out,
        rasterio.open(synthetic_project / "images/scene/B02.tif") as image,
    ):
        assert out.crs == image.crs and out.transform == image.transform
        assert np.array_equal(out.read(1), mask)
    loaded = c.get(f"{url}?user=alice").content
    assert loaded == mask.tobytes() + s.tobytes()
    rows = c.get("/api/progress").json()["images"]
    assert rows[0]["users"]["alice"]["saved"] and rows[0]["users"]["alice"]["seconds"] == 30
    c.put(f"{url}?user=alice&seconds=15", content=mask.tobytes() + s.tobytes())
    assert c.get("/api/progress").json()["images"][0]["users"]["alice"]["seconds"] == 45
    pair = c.get("/api/images/scene/agreement").json()["pairs"][0]
    assert (pair["a"], pair["b"]) == ("alice", "bob")
    assert pair["classes"]["clear"]["f1"] == 1.0
    assert pair["classes"]["thick cloud"]["iou"] == pytest.approx(12 / 16)
    # export in the CloudSEN12 scheme: chip folders that the chips reader (s2clouds train) reads
    out = tmp_path / "export"
    result = CliRunner().invoke(
        cli,
        ["annotate", "export", str(synthetic_project), "-o", str(out), "--scheme", "cloudsen12"],
    )
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "scene" / "label.tif") as ds:
        assert np.array_equal(ds.read(1), mask) and ds.tags()["LABEL_SCHEME"] == "cloudsen12"
    from s2clouds.datasets.registry import open_dataset

    sample = open_dataset(out, "chips", scheme="cloudsen12")[0]
    assert sample["bands"] == ("B02", "B03", "B04", "B08")
    assert np.array_equal(sample["mask_canonical"], mask)
    original = load_project(synthetic_project)
    from s2clouds.app.images import load_image

    expected = load_image(original.image("scene")).reflectance
    assert np.allclose(sample["image"], expected, atol=1e-4, equal_nan=True)
    # per user, in binary, labels only
    result = CliRunner().invoke(
        cli,
        ["annotate", "export", str(synthetic_project), "-o", str(out), "--scheme", "binary"]
        + ["--user", "alice", "--user", "bob", "--no-bands"],
    )
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "bob" / "scene" / "label.tif") as ds:
        assert set(np.unique(ds.read(1))) == {0, 1}
    assert not (out / "bob" / "scene" / "B02.tif").exists()
    # never over the inputs: exporting into the image's own folder is refused
    band = synthetic_project / "images" / "scene" / "B02.tif"
    before = band.read_bytes()
    result = CliRunner().invoke(
        cli, ["annotate", "export", str(synthetic_project), "-o", str(synthetic_project / "images")]
    )
    assert result.exit_code != 0 and "input file" in str(result.exception)
    assert band.read_bytes() == before


def test_saves_refuse_values_outside_the_classes_by_unlabelling_them(
    synthetic_project: Path,
) -> None:
    c = client(synthetic_project)
    mask = np.full((SIZE, SIZE), 7, np.uint8)
    assert (
        c.put("/api/images/scene/annotation?user=alice", content=mask.tobytes() * 2).status_code
        == 200
    )
    with rasterio.open(synthetic_project / "annotations/alice/scene.tif") as ds:
        assert np.all(ds.read(1) == 255)


def test_agreement_against_the_reference_of_a_real_chip(
    chips_project: Path, real_data: Path
) -> None:
    c = client(chips_project)
    with rasterio.open(real_data / "oncloudn_chip1" / "label.tif") as ds:
        label = ds.read(1)
    mask = label.copy()  # a perfect annotation in canonical classes (1 = thick cloud)
    scribbles = np.full_like(label, 255)
    assert (
        c.put(
            "/api/images/chip1/annotation?user=alice", content=mask.tobytes() + scribbles.tobytes()
        ).status_code
        == 200
    )
    reference = c.get("/api/images/chip1/agreement").json()["reference"][0]
    assert reference["scheme"] == "binary"
    assert reference["classes"]["cloud"] == {"f1": 1.0, "iou": 1.0}


def test_the_old_annotate_form_still_runs_fit(synthetic_project: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["annotate", "--help"])
    assert result.exit_code == 0 and "serve" in result.output and "fit" in result.output
    result = CliRunner().invoke(
        cli, ["annotate", str(synthetic_project / "images/scene"), "--help"]
    )
    assert result.exit_code == 0 and "--scribbles" in result.output


def test_the_shipped_model_proposes_a_mask_to_start_from(
    chips_project: Path, real_data: Path
) -> None:
    body = client(chips_project).post("/api/images/chip1/model").json()
    mask = np.frombuffer(base64.b64decode(body["mask"]), np.uint8).reshape(512, 512)
    with rasterio.open(real_data / "oncloudn_chip1" / "label.tif") as ds:
        label = ds.read(1)
    cloud = np.isin(mask, [1, 2])
    f1 = 2 * np.sum(cloud & (label == 1)) / (cloud.sum() + np.sum(label == 1))
    assert f1 > 0.8 and body["next"] is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_serve_binds_localhost_without_token_and_anything_else_with_one(
    synthetic_project: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    import uvicorn

    runs: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
    args = ["annotate", "serve", str(synthetic_project), "--port", "9999"]
    result = CliRunner().invoke(cli, args + (["--host", host] if host != "127.0.0.1" else []))
    assert result.exit_code == 0, result.output
    assert runs[0]["host"] == host and runs[0]["port"] == 9999
    c = TestClient(runs[0]["app"], headers={"X-S2clouds": "1"})  # type: ignore[arg-type]
    if host == "127.0.0.1":
        assert "token" not in result.output
        assert c.get("/api/project", headers={"host": "127.0.0.1:9999"}).status_code == 200
        assert c.get("/api/project", headers={"host": "attacker.example"}).status_code == 400
    else:
        token = result.output.split("?token=")[1].split()[0]
        assert len(token) >= 24
        assert c.get("/api/project").status_code == 401
        assert c.get(f"/api/project?token={token}").status_code == 200


def test_a_dataset_sample_by_index_with_its_label_as_reference(
    tmp_path: Path, real_data: Path
) -> None:
    from s2clouds.datasets.registry import open_dataset

    dataset = open_dataset(real_data, "chips")
    index = next(i for i in range(len(dataset)) if dataset[i]["meta"]["id"] == "oncloudn_chip2")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "project.yaml").write_text(
        f"images:\n  - {{id: sample, dataset: {{kind: chips, path: '{real_data}', index: {index}}}}}\n"
    )
    c = client(folder)
    info = c.get("/api/images/sample").json()
    assert (info["width"], info["height"], info["reference"]) == (512, 512, True)
    assert c.get("/api/images/sample/tiles/truecolor/1/0/0.png").status_code == 200
    label = dataset[index]["mask"].astype(np.uint8)
    c.put("/api/images/sample/annotation?user=annotator", content=label.tobytes() * 2)
    reference = c.get("/api/images/sample/agreement").json()["reference"][0]
    assert reference["scheme"] == "binary" and reference["classes"]["cloud"]["f1"] == 1.0
    with (
        rasterio.open(folder / "annotations/annotator/sample.tif") as out,
        rasterio.open(real_data / "oncloudn_chip2" / "B02.tif") as band,
    ):
        assert out.crs == band.crs and out.transform == band.transform


def test_safe_and_multiband_geotiff_images_with_swir_and_cirrus_views(
    tmp_path: Path, maker: Callable[[str], ModuleType]
) -> None:
    folder = tmp_path / "project"
    safe = maker("safe").write_safe(folder / "images")
    maker("geotiff").write_multiband(
        folder / "images" / "stack.tif", ["B02", "B03", "B04", "B08", "B11", "B12"]
    )
    (folder / "project.yaml").write_text(
        f"images:\n  - {{id: l1c, path: '{safe}'}}\n  - {{id: stack, path: images/stack.tif}}\n"
    )
    c = client(folder)
    views = {
        i: [v["name"] for v in c.get(f"/api/images/{i}").json()["views"]] for i in ("l1c", "stack")
    }
    assert views == {
        "l1c": ["truecolor", "falsecolor", "nir", "cirrus"],
        "stack": ["truecolor", "falsecolor", "nir"],
    }
    for image, view in (("l1c", "cirrus"), ("l1c", "falsecolor"), ("stack", "falsecolor")):
        response = c.get(f"/api/images/{image}/tiles/{view}/0/0/0.png")
        assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
    s = np.full((SIZE, SIZE), 255, np.uint8)
    s[50:52, 5:60], s[Q + 3 : Q + 5, Q + 2 : 2 * Q - 2] = 0, 1
    response = c.post("/api/images/stack/predict", content=s.tobytes())
    assert response.status_code == 200, response.text


def test_a_window_of_a_larger_image_is_saved_on_its_own_grid(
    synthetic_project: Path, real_data: Path
) -> None:
    chip = real_data / "oncloudn_chip1"
    (synthetic_project / "project.yaml").write_text(
        f"images:\n  - {{id: part, path: '{chip}', window: [100, 200, 64, 96],"
        f" reference: '{chip / 'label.tif'}', reference_scheme: binary}}\n"
        "  - {id: past, path: images/scene, window: [32, 0, 64, 64]}\n"
    )
    c = client(synthetic_project)
    info = c.get("/api/images/part").json()
    assert (info["height"], info["width"]) == (64, 96)
    with rasterio.open(chip / "label.tif") as ds:
        label = ds.read(1)[100:164, 200:296]
        transform = ds.transform * ds.transform.translation(200, 100)
    body = label.tobytes() + np.full_like(label, 255).tobytes()
    assert c.put("/api/images/part/annotation?user=annotator", content=body).status_code == 200
    with rasterio.open(synthetic_project / "annotations/annotator/part.tif") as ds:
        assert ds.transform.almost_equals(transform) and np.array_equal(ds.read(1), label)
    reference = c.get("/api/images/part/agreement").json()["reference"][0]
    assert reference["accuracy"] == 1.0
    response = c.get("/api/images/past")
    assert response.status_code == 400 and "reaches past the image" in response.json()["error"]


def test_the_assistant_classifies_fewer_pixels_on_large_images() -> None:
    from s2clouds.app.images import assistant_stride

    assert [assistant_stride(n) for n in (512 * 512, 1024 * 1024, 2048 * 2048, 5000 * 5000)] == [
        1,
        1,
        2,
        4,
    ]
