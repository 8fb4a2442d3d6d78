"""A whole eventflow cloud in one process: moto, the resources, the handlers and the API.

:class:`LocalCloud` starts, in this order, and stops in reverse:

1. moto's server on ``127.0.0.1:aws_port``, patched by
   ``motoprocess.prepare()`` (each service's requests made atomic, transactions
   all or nothing, the speed-ups; undone when the cloud stops), and the SES
   outbox at ``/_aws/ses`` (:mod:`localcloud.outbox`);
2. the process environment: the endpoint, dummy credentials and the stage's
   variables, before ``app.py`` is imported (Chalice's own order);
3. the resources, through the same code path as ``python -m infra provision``;
4. the event-source runtime (``localcloud.runtime``), which polls every event
   source of the app and invokes its handlers the way Lambda would;
5. the REST API on ``127.0.0.1:api_port``, through Chalice's local server,
   unless ``serve_api`` is False (``python -m localcloud up --no-api``): then
   ``chalice local --stage local`` serves it, from another terminal.

Port 0 picks a free port; the bound ports are then on :attr:`aws_port` and
:attr:`api_port`. Tests use that to run several clouds, one after another,
in one process: :meth:`stop` closes every socket, joins its threads and puts
the environment back. moto keeps its state per process, not per server, so a
later cloud in the same process sees an earlier one's data (and the
runtime's stream checkpoints rely on that): tests keep their data apart.
"""

from __future__ import annotations

import errno
import importlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.constants import DEFAULT_APIGATEWAY_STAGE_NAME, DEFAULT_ENDPOINT_TYPE
from moto.server import ThreadedMotoServer

from chalicelib.aws import Clients
from infra.outputs import Outputs
from infra.provision import Provisioner
from infra.resources import Stack
from infra.stack import declare
from infra.stageconfig import PROJECT_DIR, StageConfig
from localcloud import motoprocess, outbox
from localcloud.apiserver import ApiServer
from localcloud.env import EnvironmentPatch, export_lines
from localcloud.motoprocess import MotoProcess

HOST = "127.0.0.1"
log = logging.getLogger(__name__)

# (app, stage_config, stack, outputs, clients) -> an object with start, stop and stats.
RuntimeFactory = Callable[[Any, StageConfig, Stack, Outputs, Clients], Any]


class PortInUseError(RuntimeError):
    pass


def check_port_free(host: str, port: int, variable: str) -> None:
    """Fail early and clearly: moto's server thread hangs its caller if it cannot bind."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Same option as the servers: only a listener, not TIME_WAIT, makes the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"{host}:{port} is already in use; set {variable} to another port"
            ) from None
        raise
    finally:
        probe.close()


def default_runtime(
    app: Any, stage_config: StageConfig, stack: Stack, outputs: Outputs, clients: Clients
) -> Any:
    # Imported here: the runtime is a sibling package with its own dependencies,
    # and only a running cloud needs it.
    from localcloud.runtime import EventSourceRuntime

    return EventSourceRuntime(app, stage_config, stack, outputs, clients, poll_interval=0.05)


def load_app(project_dir: Path, stage: str, config_from_disk: dict[str, Any]) -> tuple[Any, Any]:
    """The Chalice app and its config, as ``chalice local`` builds them.

    This is ``CLIFactory.create_config_obj`` and ``load_chalice_app`` without
    importing ``chalice.cli``: that package imports ``inquirer``, whose import
    probes the terminal with escape sequences and waits up to 10 s when the
    terminal does not answer. The stage's environment is already applied
    (``EnvironmentPatch.point_at``), so the import sees it, as in Chalice.
    """
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    app = importlib.import_module("app").app
    config = Config(
        chalice_stage=stage,
        user_provided_params={"chalice_app": app},
        config_from_disk=config_from_disk,
        default_params={
            "project_dir": str(project_dir),
            "api_gateway_stage": DEFAULT_APIGATEWAY_STAGE_NAME,
            "api_gateway_endpoint_type": DEFAULT_ENDPOINT_TYPE,
            "autogen_policy": True,
        },
    )
    return app, config


class LocalCloud:
    def __init__(
        self,
        aws_port: int = 5000,
        api_port: int = 8000,
        stage: str = "local",
        *,
        serve_api: bool = True,
        moto_process: bool = False,
        project_dir: Path = PROJECT_DIR,
        runtime_factory: RuntimeFactory = default_runtime,
    ):
        self.stage = stage
        self.project_dir = project_dir
        self._requested_ports = (aws_port, api_port)
        self.serve_api = serve_api
        self.moto_process = moto_process
        self._runtime_factory = runtime_factory
        self._env = EnvironmentPatch()
        self._moto: ThreadedMotoServer | MotoProcess | None = None
        self._unprepare: Callable[[], None] | None = None
        self._api: ApiServer | None = None
        self.runtime: Any = None
        self.clients: Clients | None = None
        self.stage_config: StageConfig | None = None
        self.stack: Stack | None = None
        self.outputs: Outputs | None = None
        self.app: Any = None

    # -- endpoints -----------------------------------------------------------

    @property
    def aws_port(self) -> int:
        if self._moto is None:
            raise RuntimeError("the local cloud is not running")
        return int(self._moto.get_host_and_port()[1])

    @property
    def api_port(self) -> int:
        if self._api is None:
            raise RuntimeError("the local cloud's API is not running")
        return self._api.port

    @property
    def moto_pid(self) -> int | None:
        """The process moto serves in, when it has one of its own (``moto_process``)."""
        return self._moto.pid if isinstance(self._moto, MotoProcess) else None

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    @property
    def api_endpoint(self) -> str | None:
        """The API's URL; None when this cloud does not serve the API."""
        if not self.serve_api:
            return None
        return f"http://{HOST}:{self.api_port}"

    def export_lines(self) -> list[str]:
        return export_lines(self.aws_endpoint)

    # -- life cycle ----------------------------------------------------------

    def start(self) -> LocalCloud:
        aws_port, api_port = self._requested_ports
        check_port_free(HOST, aws_port, "EVENTFLOW_AWS_PORT")
        if self.serve_api:
            check_port_free(HOST, api_port, "EVENTFLOW_API_PORT")
        try:
            self._start_moto(aws_port)
            config_path = self.project_dir / ".chalice" / "config.json"
            self.stage_config = StageConfig.load(self.stage, config_path)
            self._env.point_at(self.aws_endpoint, self.stage_config.environment())
            _forget_cached_services()
            self.clients = Clients()
            self.stack = declare(self.stage_config)
            self.outputs = Provisioner(self.clients).apply(self.stack)
            self._env.set(self.outputs.app_environment())
            self.app, chalice_config = load_app(self.project_dir, self.stage, self.stage_config.raw)
            self.runtime = self._runtime_factory(
                self.app, self.stage_config, self.stack, self.outputs, self.clients
            )
            self.runtime.start()
            if self.serve_api:
                self._api = ApiServer(
                    self.app,
                    chalice_config,
                    HOST,
                    api_port,
                    around_request=getattr(self.runtime, "forwarding_metrics", None),
                )
                self._api.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self, port: int) -> None:
        if self.moto_process:
            self._moto = MotoProcess(HOST, port)
            self._moto.start()
            return
        # moto's backends lose writes under concurrent requests; the runtime makes them.
        self._unprepare = motoprocess.prepare()
        self._moto = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        self._moto.start()
        # The local outbox (GET/DELETE /_aws/ses) on moto's own host and port.
        outbox.serve(self._moto)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop everything that started, newest first; safe to call more than once."""
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self.runtime is not None:
            try:
                self.runtime.stop(timeout=timeout)
            finally:
                self.runtime = None
        if self._moto is not None:
            self._stop_moto(self._moto)
            self._moto = None
        unprepare, self._unprepare = self._unprepare, None
        try:
            if unprepare is not None:
                # moto is patched per process: later clouds and tests get it as it was.
                unprepare()
        finally:
            self._env.restore()
            _forget_cached_services()

    @staticmethod
    def _stop_moto(moto: ThreadedMotoServer | MotoProcess) -> None:
        moto.stop()
        # ThreadedMotoServer.stop ends the serving loop but never closes the
        # listening socket, which would keep the port bound until garbage collection.
        server = getattr(moto, "_server", None)
        if server is not None:
            server.server_close()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _forget_cached_services() -> None:
    """Drop the handlers' cached clients, which point at the previous endpoint, if any.

    ``chalicelib.services.services()`` builds its clients once per process; a
    second cloud in the same process (tests) is on another port.
    """
    from chalicelib.services import services

    services.cache_clear()
