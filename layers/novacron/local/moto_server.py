"""An in-process moto server: the laptop's AWS.

moto's ``ThreadedMotoServer`` serves every emulated service on one port. ``MOTO_PORT`` must name that
port because moto's own Step Functions engine calls back into the server through it.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from novacron.local._env import EnvPatch

log = logging.getLogger(__name__)

REGION = "us-east-1"
# moto's default account; ARNs built locally must use it so they match what moto returns.
ACCOUNT_ID = "123456789012"
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"  # noqa: S105


class MotoServer:
    """moto on ``127.0.0.1``, on a free port unless ``port`` is given."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._host = host
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._env = EnvPatch()
        self._clients: dict[str, Any] = {}

    @property
    def port(self) -> int:
        """The bound port (only after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("moto server is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: what every boto3 client should talk to."""
        return f"http://{self._host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether :meth:`start` has run and :meth:`stop` has not."""
        return self._server is not None

    def start(self) -> None:
        """Start serving; set ``MOTO_PORT``, dummy credentials and the region."""
        if self._server is not None:
            return
        # werkzeug logs every moto request at INFO; that drowns the runtime's own log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Port 0 lets the OS pick a free port atomically (no probe-then-bind race).
        server = ThreadedMotoServer(ip_address=self._host, port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        self._env.apply(
            {
                "MOTO_PORT": str(self._port),
                "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        # moto's backends are process-global and outlive a server: start from an empty account.
        self._post_moto_api("reset", None)
        self._enable_state_machine_execution()
        log.info("moto server listening on %s", self.endpoint_url)

    def stop(self) -> None:
        """Stop serving, close the socket, join the thread, restore the environment."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() ends serve_forever but leaves the listening socket open.
        wsgi = getattr(server, "_server", None)
        if wsgi is not None:
            wsgi.server_close()
        self._env.restore()
        self._clients.clear()
        log.info("moto server on port %s stopped", self._port)
        self._port = None

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` bound to this server, whatever the environment says.

        Cached per service (creating one costs tens of milliseconds; clients are thread-safe).
        """
        if service not in self._clients:
            self._clients[service] = self._new_client(service)
        return self._clients[service]

    def _new_client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_ACCESS_KEY,
            aws_secret_access_key=DUMMY_SECRET_KEY,
        )

    def _enable_state_machine_execution(self) -> None:
        # Without this moto's Step Functions only records executions; with it, its ASL engine runs them.
        self._post_moto_api("config", {"stepfunctions": {"execute_state_machine": True}})

    def _post_moto_api(self, action: str, payload: Any) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(  # noqa: S310 - fixed http URL of our own server
            f"{self.endpoint_url}/moto-api/{action}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
