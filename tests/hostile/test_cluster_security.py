"""The local Dask cluster opens no port that another user of the machine could use: its
scheduler and workers talk TLS with certificates made for the run, so a client without them
(plain TCP, or TLS with its own certificates) is refused. A ``--scheduler`` that is not a
Dask scheduler (text, an HTTP server, a port that never answers) is one line within the
timeout, and local workers are capped at the CPU cores."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("cryptography")

from distributed import Client  # noqa: E402
from distributed.security import Security  # noqa: E402

from s2clouds.errors import ClusterError  # noqa: E402
from s2clouds.inference.distributed import (  # noqa: E402
    ClusterOptions,
    connect,
    local_workers,
)
from s2clouds.resources import cpu_cores  # noqa: E402

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]


def test_a_local_cluster_refuses_clients_without_its_certificates() -> None:
    options = ClusterOptions(workers=1, processes=False, dashboard=False)
    with connect(options) as (client, _):
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2]).result() == 3  # its own client works
        intruders = [
            (address.replace("tls://", "tcp://"), None),  # plain TCP
            (address, Security.temporary()),  # TLS, but certificates of its own
        ]
        for target, security in intruders:
            with pytest.raises(Exception) as refused:
                Client(target, timeout="3s", security=security)
            assert not isinstance(refused.value, AssertionError)
        for worker in client.scheduler_info()["workers"]:
            assert worker.startswith("tls://127.0.0.1:")


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port that accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.mark.parametrize("which", ["http", "silent"])
def test_a_scheduler_that_is_not_dask_is_one_line_within_the_timeout(
    request: pytest.FixtureRequest, which: str
) -> None:
    address = request.getfixturevalue("http_server" if which == "http" else "silent_port")
    started = time.monotonic()
    with (
        pytest.raises(ClusterError) as refused,
        connect(ClusterOptions(scheduler=address, connect_timeout=2)),
    ):
        pass
    assert time.monotonic() - started < 15
    message = str(refused.value)
    assert "\n" not in message and address in message and "within 2 s" in message


@pytest.mark.parametrize("address", ["garbage text", "http://127.0.0.1:80", "tcp://", "localhost"])
def test_a_scheduler_address_that_is_not_one_is_refused_by_the_cli(
    tmp_path: Path, maker, refuse: Refuse, frozen, address: str
) -> None:
    scene = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)
    check = frozen(tmp_path)
    err = refuse(
        ["predict", str(scene), "-o", str(tmp_path / "m.tif"), "--scheduler", address, "--quiet"]
    )
    assert "not the address of a Dask scheduler" in err
    check()


def test_local_workers_are_capped_at_the_cores() -> None:
    cores = cpu_cores()
    with pytest.warns(UserWarning, match=f"using {cores} local workers"):
        assert local_workers(cores + 62) == cores
    assert local_workers(None) == cores
    assert local_workers(1) == 1
