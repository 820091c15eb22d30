"""The status page over real HTTP after a v2 poll with pools: each pool's free and total cards
are the simulator's own, the oldest job of each active phase is the one its records say, and a
pool API that refuses the credentials is said so, not shown as empty."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser

import httpx
import pytest

from modelarts_exporter import __version__
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from support.simulation import InProcessExporter, SimFactory
from support.truth import V2_TERMINAL, v2_group

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


class _Tables(HTMLParser):
    """Every table of the page as rows of cell texts, and every paragraph's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self._text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "p"):
            self._text = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._text is not None:
            self.tables[-1][-1].append(" ".join(self._text.split()))
        elif tag == "p" and self._text is not None:
            self.paragraphs.append(" ".join(self._text.split()))

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text += data

    def table(self, first_heading: str) -> dict[str, dict[str, str]]:
        """The table whose first column is headed ``first_heading``: {first cell: row}."""
        (rows,) = [t for t in self.tables if t and t[0] and t[0][0] == first_heading]
        head, *body = rows
        return {row[0]: dict(zip(head, row, strict=True)) for row in body}


@pytest.fixture
def page_of() -> Iterator[Callable[[InProcessExporter], _Tables]]:
    """``/`` of an exporter's states, served over HTTP as `serve` serves it."""
    servers: list[HttpServer] = []

    def get(exporter: InProcessExporter) -> _Tables:
        if not servers:
            app = WebApp(
                exporter.store,
                build_registry(exporter.store),
                ready_intervals=3,
                version=__version__,
            )
            servers.append(HttpServer(app, "127.0.0.1", 0))
            servers[0].start()
        response = httpx.get(f"http://127.0.0.1:{servers[0].port}/", timeout=30)
        assert response.status_code == 200
        page = _Tables()
        page.feed(response.text)
        return page

    yield get
    for server in servers:
        server.stop()


@pytest.fixture
def sim(simulator: SimFactory) -> SimulatorServer:
    v2 = V2Tenant(
        size=300, seed=5, now_ms=1_700_000_000_000, workspaces=("0",), active_fraction=0.3
    )
    return simulator(size=0, v2=v2)


async def _polled(exporter: InProcessExporter) -> InProcessExporter:
    assert await exporter.poll(), exporter.target.poller.state.last_error
    assert exporter.target.pools is not None
    await exporter.target.pools.poll()
    return exporter


async def test_pools_show_the_simulators_free_and_total_cards(
    sim: SimulatorServer, exporter_for: MakeExporter, page_of: Callable[..., _Tables]
) -> None:
    page = page_of(await _polled(exporter_for(sim, api_version="v2")))
    pools = page.table("Pool")
    truth = sim.pools.truth()
    assert set(pools) == set(truth)
    for pool_id, want in truth.items():
        row = pools[pool_id]
        assert row["Name"] == want.pool.name
        assert row["Source"] == ("nodes" if want.cards else "none")
        for kind, column in (("gpu", "GPUs free / total"), ("npu", "NPUs free / total")):
            cards = want.cards.get(kind)
            expected = "none" if cards is None else f"{cards.free} / {cards.capacity}"
            assert row[column] == expected, (pool_id, kind)
        not_available = sum(n for (_, state), n in want.nodes.items() if state != "available")
        assert row["Nodes not available"] == str(not_available)
    assert any(p.startswith("Pool polling up, last success ") for p in page.paragraphs)
    assert any(row["Nodes not available"] != "0" for row in pools.values())  # abnormal shown


async def test_the_oldest_job_of_each_active_phase_is_named(
    sim: SimulatorServer, exporter_for: MakeExporter, page_of: Callable[..., _Tables]
) -> None:
    page = page_of(await _polled(exporter_for(sim, api_version="v2")))
    expected: dict[str, tuple[int, str, str]] = {}
    for job in sim.v2.truth():
        phase = v2_group(job)
        if phase in V2_TERMINAL or not job.create_ms:
            continue
        key = (job.create_ms, job.id, job.name)
        if phase not in expected or key < expected[phase]:
            expected[phase] = key
    assert len(expected) >= 2
    stuck = page.table("Phase")
    assert {phase: (row["Job id"], row["Job name"]) for phase, row in stuck.items()} == {
        phase: (job_id, name) for phase, (_, job_id, name) in expected.items()
    }
    assert all(row["Waiting for"].split()[-1] in ("s", "min", "h") for row in stuck.values())


async def test_a_pool_api_that_refuses_the_credentials_is_said_so(
    sim: SimulatorServer, exporter_for: MakeExporter, page_of: Callable[..., _Tables]
) -> None:
    sim.pools.failing["pools"] = 403
    page = page_of(await _polled(exporter_for(sim, api_version="v2")))
    assert "Pool polling is off: the pool API answered 403." in page.paragraphs
    assert not any(t and t[0] and t[0][0] == "Pool" for t in page.tables)
