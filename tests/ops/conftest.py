"""A moto server of the tests' own, with the local stage provisioned on it.

The ops CLI talks HTTP to whatever ``AWS_ENDPOINT_URL`` names, as it would to
the local cloud; ``mock_aws`` would not exercise that. One server serves the
whole module; each test starts from a reset and freshly provisioned stage.
"""

from __future__ import annotations

import urllib.request

import pytest
from moto.server import ThreadedMotoServer

from infra.provision import Provisioner
from ops.target import Target


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    server._server.server_close()  # stop() leaves the listening socket open.


@pytest.fixture
def target(moto_endpoint, monkeypatch) -> Target:
    """The provisioned local stage on a clean moto server, as ``python -m ops`` sees it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    target = Target("local")
    Provisioner(target.clients).apply(target.stack)
    return target
