"""Shared fixtures: a simulator per test, an in-process exporter against it, and ground truth
computed independently of the exporter's aggregation code."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import trustme
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import status_of
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.runtime.wiring import Target, build_registry, build_target
from modelarts_exporter.simulator import SimulatorServer, Tenant
from modelarts_exporter.snapshot.aggregate import Snapshot
from modelarts_exporter.snapshot.store import StateStore

# Every secret a test configures comes from here: _secrets_never_leak fails any test after
# which one of them shows up in a log record, an exception text or a command's output.
TOKEN = "test-token-0f3c9a7e"
WRONG_TOKEN = "wrong-token-7d1e5b"
SECRET_KEY = "SK-TEST-secret-91b2"
WRONG_SECRET_KEY = "SK-wrong-3f0c"
SECURITY_TOKEN = "st-security-55aa"
BASIC_AUTH_PASSWORD = "scrape-password-5c1d"
NEW_BASIC_AUTH_PASSWORD = "rotated-password-8e2f"
TEST_SECRETS = (
    TOKEN,
    WRONG_TOKEN,
    SECRET_KEY,
    WRONG_SECRET_KEY,
    SECURITY_TOKEN,
    BASIC_AUTH_PASSWORD,
    NEW_BASIC_AUTH_PASSWORD,
)
_leaks: list[str] = []


def note_output(text: str, where: str) -> None:
    """Record a leak if ``text`` (something a user could see) holds a test secret."""
    for secret in TEST_SECRETS:
        if secret in text:
            at = text.index(secret)
            context = text[max(0, at - 60) : at].replace("\n", " ")
            _leaks.append(f"{where}: ...{context}<{secret[:4]}…>")


class _SecretWatch(logging.Handler):
    """Sees every record that reaches the root logger, before any redaction a handler applies:
    a secret in a raw record is a leak wherever the logs end up."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        note_output(text + (record.exc_text or ""), f"log record of {record.name}")


_WATCH = _SecretWatch(logging.DEBUG)


@pytest.fixture(scope="session", autouse=True)
def _watch_for_secrets() -> Iterator[None]:
    """For the whole session: the exporter logs at DEBUG and httpx at INFO (its request lines),
    every record is checked, and so are exceptions no one handled."""
    levels = {name: logging.getLogger(name).level for name in ("modelarts_exporter", "httpx")}
    logging.getLogger("modelarts_exporter").setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.INFO)
    logging.getLogger().addHandler(_WATCH)
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
    logging.getLogger().removeHandler(_WATCH)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _secrets_never_leak() -> Iterator[None]:
    yield
    assert _WATCH in logging.getLogger().handlers, "the secret watch was removed from the root"
    leaks, _leaks[:] = list(_leaks), []
    if leaks:
        pytest.fail("a test secret leaked:\n" + "\n".join(leaks), pytrace=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure the exporter explicitly; the developer's environment must not leak in."""
    for name in list(os.environ):
        if name.startswith("MODELARTS_EXPORTER_"):
            monkeypatch.delenv(name)


SimFactory = Callable[..., SimulatorServer]


_VERSION = TypeAdapter(Version)


def make_version(version_id: int, status: int, **fields: object) -> Version:
    """A version as parsing would give it: validated, the fields not given ``None``."""
    return _VERSION.validate_python({"version_id": version_id, "status": status, **fields})


class Clock:
    """A settable wall clock for polls and readiness."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


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


@dataclass
class Exporter:
    """The exporter's pieces wired to a simulator, polled by hand for deterministic tests."""

    settings: Settings
    store: StateStore = field(default_factory=StateStore)
    target: Target = field(init=False)

    def __post_init__(self) -> None:
        (target,) = resolve(self.settings, environ={})
        self.target = build_target(target, self.store)

    async def poll(self) -> bool:
        return await self.target.poller.poll()

    def exposition(self) -> str:
        return generate_latest(build_registry(self.store)).decode()

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_samples(self.exposition())


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exporter_settings(sim: SimulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "endpoint": sim.url,
        "project_id": sim.project_id,
        "auth_token": TOKEN,
        "poll_interval_seconds": 60,
        "request_timeout_seconds": 2,
        "max_retries": 0,
        "page_size": 50,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def exporter_for(
    simulator: SimFactory,
) -> AsyncIterator[Callable[..., Exporter]]:
    made: list[Exporter] = []

    def make(sim: SimulatorServer, **overrides: Any) -> Exporter:
        exporter = Exporter(exporter_settings(sim, **overrides))
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        await exporter.target.aclose()


def select(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, ls), value in samples.items() if n == name and wanted <= ls)


@dataclass
class Truth:
    """What the metrics must say, computed straight from the simulator's records."""

    by_status: Counter[str]
    by_pool: Counter[tuple[str, str, str]]
    gpus: Counter[tuple[str, str, str]]
    npus: Counter[tuple[str, str, str]]
    total: int


def truth(records: list[dict[str, object]]) -> Truth:
    by_status: Counter[str] = Counter()
    by_pool: Counter[tuple[str, str, str]] = Counter()
    gpus: Counter[tuple[str, str, str]] = Counter()
    npus: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        status = status_of(int(record["status"]))  # type: ignore[call-overload]
        key = (
            str(record.get("pool_id") or "public"),
            str(record.get("flavor_code") or "unknown"),
            status.phase.value,
        )
        by_status[status.name] += 1
        by_pool[key] += 1
        gpus[key] += int(record.get("gpu_num") or 0)  # type: ignore[call-overload]
        npus[key] += int(record.get("npu_num") or 0)  # type: ignore[call-overload]
    return Truth(by_status, by_pool, gpus, npus, len(records))


def assert_matches_truth(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], expected: Truth
) -> None:
    got_status = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "modelarts_training_job_versions" and value
    }
    assert got_status == {k: float(v) for k, v in expected.by_status.items()}
    for metric, counter in (
        ("modelarts_training_job_pool_versions", expected.by_pool),
        ("modelarts_training_job_gpus", expected.gpus),
        ("modelarts_training_job_npus", expected.npus),
    ):
        got = {
            (d["pool_id"], d["flavor_code"], d["phase"]): value
            for (name, labels), value in samples.items()
            if name == metric
            for d in [dict(labels)]
        }
        assert got == {k: float(v) for k, v in counter.items()}, metric


def assert_snapshot_matches_truth(snapshot: Snapshot, expected: Truth) -> None:
    """``assert_matches_truth`` on the snapshot itself: no exposition to render and parse, so
    cheap enough to run after every poll of a soak."""
    assert snapshot.version_count == expected.total
    assert snapshot.reported_total == expected.total
    got_status = {status.name: n for status, n in snapshot.by_status.items() if n}
    assert got_status == dict(expected.by_status)
    got_pools = {
        (pool, flavor, phase.value): u for (pool, flavor, phase), u in snapshot.by_pool.items()
    }
    assert {key: u.versions for key, u in got_pools.items()} == dict(expected.by_pool)
    assert {key: u.gpus for key, u in got_pools.items()} == dict(expected.gpus)
    assert {key: u.npus for key, u in got_pools.items()} == dict(expected.npus)


# --- the command, as a user runs it -------------------------------------------------------------


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``modelarts-exporter ARGS`` to completion; its output is checked for test secrets."""
    result = subprocess.run(
        [sys.executable, "-m", "modelarts_exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    note_output(result.stdout, f"stdout of {args[0] if args else 'serve'}")
    note_output(result.stderr, f"stderr of {args[0] if args else 'serve'}")
    return result


class _Recorded:
    """A text stream that remembers what was read from it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.seen: list[str] = []

    def read(self, size: int = -1) -> str:
        text = self._stream.read(size)
        self.seen.append(text)
        return text

    def close(self) -> None:
        self._stream.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sim_env(url: str, project_id: str) -> dict[str, str]:
    return {
        "MODELARTS_EXPORTER_ENDPOINT": url,
        "MODELARTS_EXPORTER_PROJECT_ID": project_id,
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
    }


@contextmanager
def background(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``modelarts-exporter ARGS`` running while the block runs (killed after it); what it
    wrote to stderr, read by the test or not, is checked for test secrets."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modelarts_exporter", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = _Recorded(process.stderr) if process.stderr else None
    process.stderr = stderr  # type: ignore[assignment]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if stderr is not None:
            stderr.read()
            note_output("".join(stderr.seen), f"stderr of {args[0]}")
            stderr.close()


def wait_for(
    url: str, status: int, timeout: float = 20, verify: ssl.SSLContext | bool = True
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == status:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


# --- certificates for HTTPS --------------------------------------------------------------------


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files."""

    directory: Path
    ca: trustme.CA

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def client_context(self, *, with_certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if with_certificate:
            context.load_cert_chain(self.directory / "client.pem", self.directory / "client.key")
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client = ca.issue_cert("scraper@example.org")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    return Pki(directory, ca)


def write_config(directory: Path, document: dict[str, object]) -> Path:
    path = directory / "web-config.yml"
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


# --- hostile API answers, for property tests ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
"""Any JSON value (floats include NaN and infinities, which ``json.dumps`` writes as tokens)."""


def _mostly(plausible: st.SearchStrategy[Any], *hostile: st.SearchStrategy[Any]) -> Any:
    """Nearly always a value the API could send (edge values included), now and then a wrong or
    out-of-range one: so that many pages get past the parser to the aggregator, and the rest
    probe the parser."""
    wrong = st.one_of(json_values, *hostile)
    return st.integers(0, 59).flatmap(lambda draw: wrong if draw == 0 else plausible)


_millis = _mostly(
    st.none() | st.integers(0, 2**53) | st.sampled_from([0, 1, 2**53]),
    st.integers(-(2**70), -1),
    st.integers(2**53 + 1, 2**70),
)
_label = _mostly(
    st.none() | st.text(max_size=40) | st.text(min_size=256, max_size=256),
    st.text(min_size=257, max_size=300),
)
_count = _mostly(
    st.none() | st.integers(0, 1_000_000), st.integers(-(2**40), -1), st.integers(10**6 + 1)
)
hostile_records = st.fixed_dictionaries(
    {
        "version_id": _mostly(st.integers(0, 2**63), st.integers(max_value=-1)),
        "status": _mostly(st.integers(0, 255), st.integers(256, 2**20)),
    },
    optional={
        "create_time": _millis,
        "start_time": _millis,
        "end_time": _millis,
        "duration": _millis,
        "pool_id": _label,
        "flavor_code": _label,
        "gpu_num": _count,
        "npu_num": _count,
        "version_desc": json_values,
        "unexpected": json_values,
    },
)
hostile_pages = st.fixed_dictionaries(
    {
        "versions": _mostly(st.lists(hostile_records, max_size=12)),
        "total_count": _mostly(st.integers(0, 2**53), st.integers(max_value=-1)),
    },
    optional={
        "is_success": _mostly(st.just(True), st.just(False)),
        "error_code": json_values,
        "error_message": json_values,
        "offset": json_values,
    },
)
"""Listing pages as a broken or hostile API could send them: wrong types, huge and negative
numbers, missing and extra fields, long and odd strings (quotes, newlines, any Unicode)."""
