"""Remote band files: HTTP range reads through GDAL, with retries, timeouts and signing.

A STAC item found by ``s2clouds search`` points at band files on a server
(``https://.../B04.tif``) or in a bucket (``s3://bucket/key.tif``). Such an ``href`` is opened
by GDAL's virtual file systems: ``/vsicurl/`` for http(s) reads only the byte ranges a window
needs (a COG's header, then its tiles), ``/vsis3/`` for s3 (credentials from the usual AWS
environment variables). Every open of a remote file goes through :func:`open_raster`, which

* runs the **signing hook** on the unsigned href first, at that moment (signed URLs expire:
  a job graph built an hour before its windows are read must not carry signatures), and
* wraps the open and every read in :class:`rasterio.Env` with the GDAL HTTP options of
  :data:`GDAL_HTTP_DEFAULTS` (retries, timeouts, no directory listing). Each default gives
  way to the environment variable of the same name (``GDAL_HTTP_MAX_RETRY=10``).

A signing hook is named, never passed as an object, so that a scene holding it pickles and
crosses Dask workers: ``"module:function"`` (importable on every worker), a name registered
in the ``s2clouds.signers`` entry-point group, or a built-in name of :data:`BUILTIN_SIGNERS`.
The function takes the href from the item (str) and returns the URL to open (str). The name
may also come from the environment variable :data:`SIGN_ENV` (``S2CLOUDS_SIGN``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from s2clouds.errors import RemoteReadError, S2CloudsError, SceneFormatError
from s2clouds.registry import Registry, load_attribute

#: URL schemes read remotely, and the GDAL virtual file system of each
REMOTE_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/"}
#: GDAL configuration for remote reads; an environment variable of the same name wins
GDAL_HTTP_DEFAULTS: dict[str, str] = {
    "GDAL_HTTP_MAX_RETRY": "4",  # retries of HTTP 429/502/503/504 and failed connections
    "GDAL_HTTP_RETRY_DELAY": "1",  # seconds before the first retry (doubled at each one)
    "GDAL_HTTP_TIMEOUT": "60",  # seconds one request may take
    "GDAL_HTTP_CONNECTTIMEOUT": "10",  # seconds to connect
    # a server that accepts and then sends nothing (or trickles) is dropped after 15 s of
    # less than 1 byte/s, not after the whole GDAL_HTTP_TIMEOUT: with the retries, a
    # silent server costs at most 5 x 15 s + 15 s of delays per file
    "GDAL_HTTP_LOW_SPEED_TIME": "15",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # never list the folder of a band file
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.JP2,.vrt",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
}
#: environment variable naming the signing hook when none is given
SIGN_ENV = "S2CLOUDS_SIGN"
#: entry-point group where packages register signing hooks by name
SIGNER_ENTRY_POINTS = "s2clouds.signers"
#: built-in signing hooks by name
BUILTIN_SIGNERS = {"planetary-computer": "s2clouds.io.remote:sign_planetary_computer"}


def _signer(name: str, loaded: Any) -> Callable[[str], str]:
    """``loaded`` when it is a function (a signing hook takes and returns an href)."""
    if not callable(loaded):
        raise TypeError(f"{loaded!r} is not callable; name a function")
    hook: Callable[[str], str] = loaded
    return hook


#: signing hooks by name: the built-in ones, then the entry points of SIGNER_ENTRY_POINTS
SIGNERS: Registry[Callable[[str], str]] = Registry(
    "signing hook", group=SIGNER_ENTRY_POINTS, adapt=_signer
)
for _name, _target in BUILTIN_SIGNERS.items():
    SIGNERS.register_lazy(_name, _target)
#: Planetary Computer SAS token endpoint (``{endpoint}/{account}/{container}``); the
#: environment variable ``S2CLOUDS_PC_SAS_URL`` replaces it (a mirror, or a test server)
PC_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
#: a cached token is renewed when it expires in less than this (seconds)
PC_TOKEN_MARGIN_S = 300.0


def is_remote(path: str) -> bool:
    """Whether ``path`` is an href read over the network (http, https, s3)."""
    return urlparse(str(path)).scheme.lower() in REMOTE_SCHEMES


def gdal_path(href: str) -> str:
    """The GDAL path of a remote ``href``: ``/vsicurl/https://...`` or ``/vsis3/bucket/key``;
    other paths unchanged."""
    parsed = urlparse(href)
    scheme = parsed.scheme.lower()
    if scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if scheme in REMOTE_SCHEMES:
        return REMOTE_SCHEMES[scheme] + href
    return href


def gdal_http_options() -> dict[str, str]:
    """:data:`GDAL_HTTP_DEFAULTS`, each replaced by its environment variable when set."""
    return {key: os.environ.get(key, value) for key, value in GDAL_HTTP_DEFAULTS.items()}


def signer_name(sign: str | None) -> str | None:
    """The signing hook to record in a scene: ``sign``, else ``$S2CLOUDS_SIGN``, else None
    (``"none"`` or an empty name mean no signing)."""
    name = sign if sign is not None else os.environ.get(SIGN_ENV)
    name = (name or "").strip()
    return None if name.lower() in ("", "none") else name


@lru_cache(maxsize=32)
def resolve_signer(name: str) -> Callable[[str], str]:
    """The function a signing hook name stands for (loaded once per process).

    ``name`` is a key of :data:`BUILTIN_SIGNERS`, ``module:function`` or an entry point of
    :data:`SIGNER_ENTRY_POINTS`; :class:`RemoteReadError` when it cannot be loaded.
    """
    try:
        found = _signer(name, load_attribute(name)) if ":" in name else SIGNERS[name]
    except (ImportError, AttributeError, ValueError, TypeError, S2CloudsError) as exc:
        raise RemoteReadError(
            f"cannot load the signing hook {name!r} ({type(exc).__name__}: {exc}); give "
            f"module:function importable on every worker, an entry point of "
            f"{SIGNER_ENTRY_POINTS}, or a built-in name ({', '.join(BUILTIN_SIGNERS)})"
        ) from exc
    return found


def sign_href(href: str, sign: str | None) -> str:
    """``href`` signed by the hook ``sign`` (a name, see :func:`resolve_signer`) now; hrefs
    that are not remote, or no hook, unchanged."""
    if not sign or not is_remote(href):
        return href
    signed = resolve_signer(sign)(href)
    if not isinstance(signed, str) or not signed:
        raise RemoteReadError(
            f"signing hook {sign!r} returned {signed!r} for {href}; it must return the URL "
            "to open as text"
        )
    return signed


@contextmanager
def open_raster(
    path: str, sign: str | None = None, *, overview_level: int | None = None
) -> Iterator[Any]:
    """``rasterio.open`` of a local path, GDAL path or remote href (see the module text), or
    of its overview ``overview_level`` (0: the first overview).

    A remote href is signed by ``sign`` at this call and opened through ``/vsicurl/`` or
    ``/vsis3/`` inside :class:`rasterio.Env` with :func:`gdal_http_options`; reads of the
    yielded dataset happen inside the same environment. A remote open that fails raises
    :class:`RemoteReadError` naming the unsigned href (never the signature). A local file
    stays open for the next reads in this thread (:func:`_kept_open`).
    """
    import rasterio

    if not is_remote(path):
        with _kept_open(path, overview_level) as ds:
            yield ds
        return
    with rasterio.Env(**gdal_http_options()):
        target = gdal_path(sign_href(path, sign))
        try:
            ds = rasterio.open(target, **_level_option(overview_level))
        except rasterio.errors.RasterioIOError as exc:
            raise remote_error(path, exc, sign) from exc
        with ds:
            yield ds


#: local raster datasets kept open per thread (see :func:`_kept_open`): a 13-band product
#: opened at full resolution and at one resolution level each, with room for a second scene
KEPT_OPEN = 64
_kept = threading.local()


@contextmanager
def _kept_open(path: str, overview_level: int | None) -> Iterator[Any]:
    """``rasterio.open(path)`` kept open for the next reads in this thread: GDAL caches
    decoded blocks per open dataset, so neighbouring windows, whose halos share the file's
    tiles, decode them once. Keyed by the file's identity (inode, size, modification time),
    so a replaced file is opened afresh; the least recently used of :data:`KEPT_OPEN`
    datasets is closed, and so is one whose read failed."""
    import rasterio

    if not hasattr(_kept, "cache"):
        _kept.cache = OrderedDict()
    cache: OrderedDict[Any, Any] = _kept.cache
    key = (path, overview_level, _file_identity(path))
    ds = cache.pop(key, None)
    if getattr(_kept, "failed", False) and ds is not None:
        # a failed read may leave a GDAL error pending that the next read on any kept
        # dataset would raise; opening a dataset clears it
        ds.close()
        ds = None
    if ds is None or ds.closed:
        ds = rasterio.open(path, **_level_option(overview_level))
    _kept.failed = False
    try:
        yield ds
    except BaseException:
        _kept.failed = True
        ds.close()
        raise
    cache[key] = ds
    while len(cache) > KEPT_OPEN:
        cache.popitem(last=False)[1].close()


def _level_option(overview_level: int | None) -> dict[str, int]:
    """The rasterio keyword for an overview level; none at all for the full resolution (any
    value given, even None, becomes GDAL's OVERVIEW_LEVEL open option)."""
    return {} if overview_level is None else {"overview_level": overview_level}


def _file_identity(path: str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:  # a GDAL virtual path (/vsizip/...): by name
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def remote_error(href: str, exc: BaseException, sign: str | None = None) -> RemoteReadError:
    """:class:`RemoteReadError` for a remote read that failed: the href without its query
    (a signature must not reach logs), GDAL's reason and what to try for that reason."""
    shown = href.split("?", 1)[0]
    reason = gdal_reason(exc).replace(href, shown)
    if "?" in reason:  # a signed URL in GDAL's message: keep it out of the logs
        reason = " ".join(w.split("?", 1)[0] if "://" in w else w for w in reason.split())
    found = re.search(r"HTTP response code: (\d+)", reason)
    code = int(found[1]) if found else None
    if href.lower().startswith("s3://") and code in (None, 401, 403):
        hint = "set AWS credentials (or AWS_NO_SIGN_REQUEST=YES for a public bucket)"
    elif code in (401, 403):
        hint = (
            "the server refused access: the signature may have expired or be wrong (check "
            "the sign= hook)"
            if sign
            else "the server refused access: a signed URL may be needed (give sign=, e.g. "
            "sign=planetary-computer)"
        )
    elif code == 404:
        hint = "the file is not at that URL: the item may be outdated, search again"
    else:
        retries = gdal_http_options()["GDAL_HTTP_MAX_RETRY"]
        hint = (
            f"gave up after {retries} retries: check the network and the URL "
            "(GDAL_HTTP_MAX_RETRY, GDAL_HTTP_RETRY_DELAY, GDAL_HTTP_TIMEOUT and "
            "GDAL_HTTP_LOW_SPEED_TIME set the retries, their delay and the timeouts)"
        )
    return RemoteReadError(f"cannot read remote file {shown} ({reason}); {hint}")


def read_failure(path: str, exc: BaseException, sign: str | None = None) -> SceneFormatError:
    """The error for a raster read that failed: :func:`remote_error` for remote hrefs, else
    a damaged or missing local file."""
    if is_remote(path):
        return remote_error(path, exc, sign)
    return SceneFormatError(
        f"cannot read {path} ({gdal_reason(exc)}); the file is missing or damaged, re-download it"
    )


def gdal_reason(exc: BaseException) -> str:
    """What GDAL said went wrong: rasterio's "Read failed. See previous exception" errors
    keep the GDAL message in their cause."""
    return str(exc.__cause__ or exc).strip().rstrip(".")


# --- the built-in Planetary Computer style signing hook ---------------------------------

_PC_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}
_PC_LOCK = threading.Lock()


def sign_planetary_computer(href: str) -> str:
    """Append a Planetary Computer SAS token to an Azure Blob Storage ``href``.

    For ``https://<account>.blob.core.windows.net/<container>/...`` a token for that
    account and container is fetched from the SAS endpoint (:data:`PC_SAS_URL`, or
    ``$S2CLOUDS_PC_SAS_URL``; ``$PC_SDK_SUBSCRIPTION_KEY`` is sent when set) and cached in
    this process until :data:`PC_TOKEN_MARGIN_S` seconds before it expires. Other hrefs,
    and hrefs that already carry a signature (``sig=``), are returned unchanged.
    """
    parsed = urlparse(href)
    host = parsed.hostname or ""
    if not host.endswith(".blob.core.windows.net") or "sig=" in parsed.query:
        return href
    account = host.split(".", 1)[0]
    container = parsed.path.lstrip("/").split("/", 1)[0]
    token = _pc_token(account, container)
    return f"{href}{'&' if parsed.query else '?'}{token.lstrip('?')}"


def _pc_token(account: str, container: str) -> str:
    """A SAS token for ``account``/``container``, from the cache or the endpoint."""
    with _PC_LOCK:
        cached = _PC_TOKENS.get((account, container))
        if cached is not None and cached[1] - time.time() > PC_TOKEN_MARGIN_S:
            return cached[0]
        token, expiry = _fetch_pc_token(account, container)
        _PC_TOKENS[(account, container)] = (token, expiry)
        return token


def _fetch_pc_token(account: str, container: str) -> tuple[str, float]:
    from urllib.error import URLError
    from urllib.request import Request, urlopen

    endpoint = os.environ.get("S2CLOUDS_PC_SAS_URL", PC_SAS_URL).rstrip("/")
    url = f"{endpoint}/{account}/{container}"
    headers = {"Accept": "application/json"}
    if key := os.environ.get("PC_SDK_SUBSCRIPTION_KEY"):
        headers["Ocp-Apim-Subscription-Key"] = key
    try:
        with urlopen(Request(url, headers=headers), timeout=30) as response:
            body = json.loads(response.read(1 << 20).decode("utf-8"))
        token = str(body["token"])
        expiry = datetime.fromisoformat(str(body["msft:expiry"]).replace("Z", "+00:00"))
    except (URLError, OSError, ValueError, KeyError, TypeError) as exc:
        raise RemoteReadError(
            f"cannot get a Planetary Computer SAS token from {url} ({exc}); check the network, "
            "or set S2CLOUDS_PC_SAS_URL / PC_SDK_SUBSCRIPTION_KEY"
        ) from exc
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return token, expiry.timestamp()
