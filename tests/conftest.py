"""Fixtures and hooks of every test: a simulator per test, an in-process exporter against it,
certificates, the watch for leaked secrets, and each test's tier. Shared helpers live in the
``support`` package.

The tier is the first folder under tests/, and the marker of the same name (pyproject.toml
lists them): ``unit`` (pure: no sockets, no subprocesses), ``integration`` (in this process, real
HTTP on 127.0.0.1 against the simulator), ``command`` (the command run as a process against it),
``deploy`` (the real tools: promtool, helm, hadolint, tsc, Prometheus), ``browser`` (chromium) and
``soak``. ``make check`` runs the first two."""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from wsgiref.types import WSGIApplication

import pytest
from hypothesis import HealthCheck, settings

from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.simulator import SimulatorServer, Tenant
from support.pki import Pki, make_pki
from support.secrets import TOKEN, WATCH, leaks, note_output
from support.simulation import InProcessExporter, ServeWsgi, SimFactory, exporter_settings

TIERS = ("unit", "integration", "command", "deploy", "browser", "soak")
TESTS = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    """Property tests are not timed: hypothesis' deadline per example and its too-slow health
    check are wall-clock bounds, which a busy machine breaks."""
    settings.register_profile(
        "untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("untimed")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker, and before xdist groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier, the folder it is in; a test outside the tiers is an error.

    Under ``pytest -n`` (``make test``, ``make check``: pytest-xdist, ``--dist loadfile``) a
    file's tests run in one worker, in order, so that a module's fixtures start once. The
    soaks, minutes long and a file each, are sent out first so that they run side by side.
    (Not ``loadgroup``: pytest 9.2 ignores the node ids xdist 3.8 renames for it.)"""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: not in a tier folder ({', '.join(TIERS)})")
        item.add_marker(tier)
    # The soaks first: started last, the minutes they take would be the run's tail.
    items.sort(key=lambda item: item.get_closest_marker("soak") is None)


@pytest.fixture(scope="session", autouse=True)
def _watch_for_secrets() -> Iterator[None]:
    """For the whole session: the exporter logs at DEBUG and httpx at INFO (its request lines),
    every record is checked, and so are exceptions no one handled."""
    levels = {name: logging.getLogger(name).level for name in ("modelarts_exporter", "httpx")}
    logging.getLogger("modelarts_exporter").setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.INFO)
    logging.getLogger().addHandler(WATCH)
    thread_hook, unraisable_hook = threading.excepthook, sys.unraisablehook

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        note_output("".join(traceback.format_exception(args.exc_value)), "thread exception")
        thread_hook(args)

    def on_unraisable(args: Any) -> None:
        note_output(repr(args.exc_value), "unraisable exception")
        unraisable_hook(args)

    threading.excepthook, sys.unraisablehook = on_thread_exception, on_unraisable
    yield
    threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook
    logging.getLogger().removeHandler(WATCH)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _secrets_never_leak() -> Iterator[None]:
    yield
    assert WATCH in logging.getLogger().handlers, "the secret watch was removed from the root"
    found, leaks[:] = list(leaks), []
    if found:
        pytest.fail("a test secret leaked:\n" + "\n".join(found), pytrace=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure the exporter explicitly; the developer's environment must not leak in."""
    for name in list(os.environ):
        if name.startswith("MODELARTS_EXPORTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def simulator() -> Iterator[SimFactory]:
    """Start simulators on 127.0.0.1 (``size``/``seed``/… go to the tenant, the rest to the
    server); every one is stopped after the test."""
    started: list[SimulatorServer] = []

    def start(
        size: int = 500,
        seed: int = 7,
        tenant_options: Mapping[str, Any] | None = None,
        **server_options: Any,
    ) -> SimulatorServer:
        tenant = Tenant(size=size, seed=seed, **(tenant_options or {}))
        server_options.setdefault("tokens", [TOKEN])
        server = SimulatorServer(tenant, **server_options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def exporter_for(
    simulator: SimFactory,
) -> AsyncIterator[Callable[..., InProcessExporter]]:
    made: list[InProcessExporter] = []

    def make(sim: SimulatorServer, **overrides: Any) -> InProcessExporter:
        exporter = InProcessExporter(exporter_settings(sim, **overrides))
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        await exporter.target.aclose()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve_wsgi() -> Iterator[ServeWsgi]:
    """Serves any WSGI application on 127.0.0.1; its port. Stopped after the test."""
    servers: list[HttpServer] = []

    def start(app: WSGIApplication) -> int:
        server = HttpServer(app, "127.0.0.1", 0)
        servers.append(server)
        server.start()
        return server.port

    yield start
    for server in servers:
        server.stop()
