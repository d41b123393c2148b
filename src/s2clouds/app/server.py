"""The annotation app's web server (FastAPI): the project's images as PNG tiles, the
assistant, flood fill, saves, progress and agreement, and the static front end.

Security: requests name images and users only by the ids of ``project.yaml`` (anything
else is 404, so no path from a request ever reaches the file system); saves go under
``<project>/annotations`` and are refused when that leads out through a symlink; bodies are
size-limited; with a token (``serve --host 0.0.0.0``) every request must carry it; the
Host header is checked against the bound names (DNS rebinding); requests that change or
compute something (POST, PUT) need the ``X-S2clouds`` header, which a page of another site
cannot send without a CORS preflight that the app never grants, and a foreign ``Origin`` is
refused; the assistant runs at most :data:`MAX_FITS` fits at once; responses forbid framing
and foreign scripts.
"""

from __future__ import annotations

import base64
import secrets
import threading
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from s2clouds.app.images import (
    DEFAULT_STRETCH,
    MAX_PIXELS,
    TILE,
    ImageCache,
    LoadedImage,
    Proposal,
    flood_fill,
    model_proposal,
    propose,
    render_tile,
)
from s2clouds.app.project import NAME_PATTERN, Project
from s2clouds.app.store import agreement, load_annotation, progress, save_annotation
from s2clouds.errors import S2CloudsError
from s2clouds.labels import CANONICAL_CLASSES, NODATA

#: the largest request body: a mask and its scribbles of the largest image, plus slack
MAX_BODY = 2 * MAX_PIXELS + (1 << 20)
TOKEN_COOKIE = "s2clouds_token"
#: header every POST/PUT must carry (cross-site requests cannot, without a preflight)
CSRF_HEADER = "x-s2clouds"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: pixel-model fits (or shipped-model runs) at once; more wait
MAX_FITS = 2
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "progress.html": "text/html; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'"
    ),
}


class BodyTooLarge(Exception):
    pass


def static_file(name: str) -> bytes:
    return resources.files("s2clouds.app").joinpath("static", name).read_bytes()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(
    project: Project,
    *,
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The FastAPI application serving ``project``. ``token``: required on every request
    (query ``token``, header ``Authorization: Bearer``, or the cookie the first page sets);
    ``allowed_hosts``: Host header values accepted (None: any)."""
    app = FastAPI(title=f"s2clouds annotate: {project.name}", docs_url=None, redoc_url=None)
    app.state.project = project
    cache = ImageCache(project)
    app.state.images = cache
    fits = threading.BoundedSemaphore(MAX_FITS)

    def limited(function: Any, *args: Any) -> Any:
        with fits:
            return function(*args)

    def known_image(image_id: str) -> LoadedImage:
        if not NAME_PATTERN.match(image_id):
            raise HTTPException(404, f"no image {image_id!r} in this project")
        try:
            return cache.get(image_id)
        except KeyError:
            raise HTTPException(404, f"no image {image_id!r} in this project") from None

    def known_user(user: str) -> str:
        if user not in project.users:
            raise HTTPException(404, f"no user {user!r} in this project")
        return user

    async def read_body(request: Request, expected: int) -> bytes:
        """The body, which must be exactly ``expected`` bytes (and at most ``max_body``)."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) != expected):
            raise HTTPException(
                413 if declared.isdigit() and int(declared) > expected else 400,
                f"body must be {expected} bytes",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > expected:
                raise HTTPException(413, f"body larger than {expected} bytes")
            chunks.append(chunk)
        if size != expected:
            raise HTTPException(400, f"body must be {expected} bytes, got {size}")
        return b"".join(chunks)

    def as_raster(data: bytes, shape: tuple[int, int]) -> np.ndarray:
        values = np.frombuffer(data, np.uint8).reshape(shape).copy()
        values[~np.isin(values, [*CANONICAL_CLASSES, NODATA])] = NODATA
        return values

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return JSONResponse({"error": "request too large"}, status_code=413)
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if CSRF_HEADER not in request.headers or (
                origin is not None and urlsplit(origin).netloc != request.headers.get("host")
            ):
                return JSONResponse(
                    {"error": "refused: a cross-site request (send the X-S2clouds header)"},
                    status_code=403,
                )
        if token is not None:
            given = (
                request.query_params.get("token")
                or request.cookies.get(TOKEN_COOKIE)
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if not given or not secrets.compare_digest(given.encode(), token.encode()):
                return JSONResponse(
                    {"error": "a token is required: open the URL printed by 'annotate serve'"},
                    status_code=401,
                )
        try:
            response = await call_next(request)
        except S2CloudsError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=400)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        if token is not None and request.query_params.get("token") == token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(S2CloudsError)
    async def library_error(request: Request, exc: S2CloudsError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.get("/")
    def index() -> Response:
        return Response(static_file("index.html"), media_type=STATIC_FILES["index.html"])

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/progress")
    def progress_page() -> Response:
        return Response(static_file("progress.html"), media_type=STATIC_FILES["progress.html"])

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such file")
        return Response(static_file(name), media_type=STATIC_FILES[name])

    @app.get("/api/project")
    def project_info() -> dict[str, Any]:
        return {
            "name": project.name,
            "scheme": project.scheme,
            "users": list(project.users),
            "classes": [
                {"value": c.value, "name": c.name, "colour": c.colour, "key": c.key}
                for c in project.classes
            ],
            "images": [{"id": i.id, "reference": i.reference is not None} for i in project.images],
            "tile": TILE,
        }

    @app.get("/api/images/{image_id}")
    def image_info(image_id: str) -> dict[str, Any]:
        image = known_image(image_id)
        height, width = image.shape
        return {
            "id": image_id,
            "width": width,
            "height": height,
            "bands": list(image.bands),
            "resolution": image.grid.resolution,
            "crs": str(image.grid.crs) if image.grid.crs else None,
            "views": [
                {"name": v.name, "title": v.title} for v in project.views if image.has_bands(v)
            ],
            "stretch": list(DEFAULT_STRETCH),
            "reference": image.spec.reference is not None or image.reference is not None,
        }

    @app.get("/api/images/{image_id}/tiles/{view}/{level}/{tx}/{ty}.png")
    def tile(
        image_id: str,
        view: str,
        level: int,
        tx: int,
        ty: int,
        lo: float = DEFAULT_STRETCH[0],
        hi: float = DEFAULT_STRETCH[1],
    ) -> Response:
        image = known_image(image_id)
        spec = next((v for v in project.views if v.name == view and image.has_bands(v)), None)
        if spec is None:
            raise HTTPException(404, f"no view {view!r} for image {image_id!r}")
        height, width = image.shape
        span = TILE * 2**level if 0 <= level <= 16 else 0
        if not span or not (0 <= tx * span < width and 0 <= ty * span < height):
            raise HTTPException(404, "no such tile")
        if not (0.0 <= lo < hi <= 100.0):
            raise HTTPException(400, "stretch: give 0 <= lo < hi <= 100 (percentiles)")
        png = render_tile(image, spec, level, tx, ty, (round(lo, 1), round(hi, 1)))
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=600"})

    @app.post("/api/images/{image_id}/predict")
    async def predict(image_id: str, request: Request) -> dict[str, Any]:
        image = known_image(image_id)
        scribbles = as_raster(await read_body(request, image.reflectance[0].size), image.shape)
        proposal = await run_in_threadpool(
            limited, propose, image, scribbles, project.assistant_bands, project.assistant_rounds
        )
        return proposal_json(proposal)

    @app.post("/api/images/{image_id}/model")
    async def shipped_model(image_id: str) -> dict[str, Any]:
        image = known_image(image_id)
        return proposal_json(await run_in_threadpool(limited, model_proposal, image))

    def proposal_json(proposal: Proposal) -> dict[str, Any]:
        return {
            "mask": base64.b64encode(proposal.mask.tobytes()).decode(),
            "confidence": base64.b64encode(proposal.confidence.tobytes()).decode(),
            "next": proposal.next_region,
            "scribbled": {CANONICAL_CLASSES[c]: n for c, n in proposal.scribbled.items()},
            "seconds": round(proposal.seconds, 2),
        }

    @app.get("/api/images/{image_id}/flood")
    def flood(image_id: str, row: int, col: int, tolerance: float = 0.1) -> dict[str, Any]:
        image = known_image(image_id)
        height, width = image.shape
        if not (0 <= row < height and 0 <= col < width) or not 0 <= tolerance <= 1:
            raise HTTPException(400, "row, col inside the image and tolerance in 0-1")
        r0, c0, region = flood_fill(image, row, col, tolerance)
        return {
            "row": r0,
            "col": c0,
            "height": int(region.shape[0]),
            "width": int(region.shape[1]),
            "region": base64.b64encode(region.astype(np.uint8).tobytes()).decode(),
            "pixels": int(region.sum()),
        }

    @app.get("/api/images/{image_id}/annotation")
    def get_annotation(image_id: str, user: str) -> Response:
        image = known_image(image_id)
        saved = load_annotation(project, known_user(user), image_id)
        if saved is None:  # not saved yet: nothing to load
            return Response(status_code=204)
        mask, scribbles = saved
        if mask.shape != image.shape:
            raise HTTPException(409, "the saved mask does not match the image's size")
        return Response(mask.tobytes() + scribbles.tobytes(), media_type="application/octet-stream")

    @app.put("/api/images/{image_id}/annotation")
    async def put_annotation(
        image_id: str, user: str, request: Request, seconds: float = 0.0
    ) -> dict[str, Any]:
        image = known_image(image_id)
        known_user(user)
        size = image.reflectance[0].size
        body = await read_body(request, 2 * size)
        mask, scribbles = as_raster(body[:size], image.shape), as_raster(body[size:], image.shape)
        paths = await run_in_threadpool(
            save_annotation, project, user, image_id, image.grid, mask, scribbles, seconds
        )
        return {"saved": paths["mask"].relative_to(project.root.resolve()).as_posix()}

    @app.get("/api/images/{image_id}/agreement")
    def image_agreement(image_id: str) -> dict[str, Any]:
        image = known_image(image_id)
        return agreement(project, image_id, image.shape, image.reference)

    @app.get("/api/progress")
    def project_progress() -> dict[str, Any]:
        return {"name": project.name, "images": progress(project)}

    return app
