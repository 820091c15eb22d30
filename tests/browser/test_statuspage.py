"""The status page in a real browser: Debian's headless Chromium loads `/` of an exporter that
polls the simulator, once after a successful poll and once after a failed one. The rendered DOM
must say what an operator needs (up or down, since when, why, what the last good poll counted, as
the simulator's own records count it), and a screenshot of each state is kept in test-artifacts/
for a human to look at."""

from __future__ import annotations

import struct
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modelarts_exporter import __version__
from modelarts_exporter.cloud.statuses import Phase
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.simulator import FaultKind, FaultRule
from support.deploy import REPO, tool
from support.secrets import TOKEN
from support.simulation import InProcessExporter, SimFactory
from support.truth import truth

pytestmark = pytest.mark.anyio

ARTIFACTS = REPO / "test-artifacts"
WINDOW = (1280, 900)


class _PageText(HTMLParser):
    """The page as a reader sees it: headings, and each table as {row heading: cell text}."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[str] = []
        self.tables: list[dict[str, str]] = []
        self.links: list[str] = []
        self.paragraphs: list[str] = []
        self._open: list[str] = []
        self._text = ""
        self._row_heading = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.append(tag)
        if tag in ("title", "h1", "h2", "h3", "th", "td", "p"):
            self._text = ""
        if tag == "table":
            self.tables.append({})
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass
        text = " ".join(self._text.split())
        if tag == "title":
            self.title = text
        elif tag in ("h1", "h2", "h3"):
            self.headings.append(text)
        elif tag == "p":
            self.paragraphs.append(text)
        elif tag == "th":
            self._row_heading = text
        elif tag == "td":
            self.tables[-1][self._row_heading] = text

    def handle_data(self, data: str) -> None:
        self._text += data


def chromium(url: str, *args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``url``, isolated from the network and any user profile."""
    command = [
        tool("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return result


def rendered(url: str, screenshot: Path, profile: Path) -> _PageText:
    """The page's DOM after Chromium rendered it; its screenshot is written to ``screenshot``."""
    page = _PageText()
    page.feed(chromium(url, "--dump-dom", profile=profile).stdout)
    screenshot.unlink(missing_ok=True)
    chromium(
        url, f"--screenshot={screenshot}", "--window-size={},{}".format(*WINDOW), profile=profile
    )
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{screenshot} is not a PNG"
    assert struct.unpack(">II", header[16:24]) == WINDOW
    return page


@pytest.fixture
def serve() -> Iterator[Callable[[InProcessExporter], str]]:
    """Serves an exporter's states over HTTP, as `serve` does; stopped after the test."""
    servers: list[HttpServer] = []

    def start(exporter: InProcessExporter) -> str:
        app = WebApp(
            exporter.store, build_registry(exporter.store), ready_intervals=3, version=__version__
        )
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}/"

    yield start
    for server in servers:
        server.stop()


async def test_status_page_after_a_good_and_a_failed_poll(
    simulator: SimFactory,
    exporter_for: Callable[..., InProcessExporter],
    serve: Callable[[InProcessExporter], str],
    tmp_path: Path,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    sim = simulator(size=400)
    exporter = exporter_for(sim)
    url = serve(exporter)
    expected = truth(sim.tenant.records_in("0"))
    by_phase: Counter[str] = Counter()
    for (_, _, phase), n in expected.by_pool.items():
        by_phase[phase] += n
    phases = ", ".join(f"{p.value} {by_phase[p.value]}" for p in Phase if by_phase[p.value])

    def accelerators(phase: str) -> str:
        gpus = sum(n for (_, _, p), n in expected.gpus.items() if p == phase)
        npus = sum(n for (_, _, p), n in expected.npus.items() if p == phase)
        return f"{phase}: {gpus} GPU{'s' * (gpus != 1)}, {npus} NPU{'s' * (npus != 1)}"

    assert await exporter.poll()
    assert exporter.target.pools is not None
    await exporter.target.pools.poll()

    good = rendered(url, ARTIFACTS / "statuspage-ok.png", tmp_path / "profile")
    assert good.title == "ModelArts exporter"
    assert good.headings == [
        f"ModelArts exporter {__version__}",
        sim.project_id,
        "Oldest job per phase",
        "Resource pools",
    ]
    assert good.links == ["/", "/metrics", "/healthz", "/readyz"]
    assert good.paragraphs[0] == "1 target: 1 up."
    target, stuck, pools = good.tables
    # Which job and how many cards: test_showback.py and the integration test_statuspage.py.
    assert stuck and pools
    assert target["Status"] == "up"
    assert target["Project"] == sim.project_id
    assert target["Last poll"].endswith(" s") and " ago), took " in target["Last poll"]
    assert target["Last success"].endswith(" s ago)")
    assert target["Last error"] == "none"
    assert target["Versions"] == f"{expected.total} ({phases})"
    assert target["Accelerators"] == f"{accelerators('running')}; {accelerators('pending')}"

    sim.faults.add(FaultRule(FaultKind.SERVER_ERROR))
    assert not await exporter.poll()

    failed = rendered(url, ARTIFACTS / "statuspage-failed.png", tmp_path / "profile")
    after, *_ = failed.tables
    assert after["Status"] == "down"
    assert failed.paragraphs[0] == f"1 target: 1 down ({sim.project_id}), 0 up."
    assert after["Last error"].startswith("server_error ")
    assert "ModelArts.0010" in after["Last error"]
    # The last good snapshot stays, with the time it was taken.
    assert after["Last success"].split(" (")[0] == target["Last success"].split(" (")[0]
    assert after["Versions"] == target["Versions"]
    assert after["Accelerators"] == target["Accelerators"]
    assert TOKEN not in str(failed.tables)
