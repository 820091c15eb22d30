"""5. API economy: requests per incremental poll against a full listing's, in steady state."""

from __future__ import annotations

from .common import Row, requests_sent, target_for, timed_poll
from .simproc import SimProcess

SIZE = 100_000
POLLS = 25
WARM_UP = 5
INTERVAL_S = 60.0


async def steady_requests(sim: SimProcess, **options: object) -> tuple[list[int], int, int]:
    """Requests of each incremental poll after the warm-up (the tenant advanced by
    ``INTERVAL_S`` before each), a full listing's requests, and the incremental target's
    fallbacks to a full listing."""
    full = target_for(sim, **options)
    incremental = target_for(sim, **options, poll_mode="incremental", full_listing_every=1000)
    await timed_poll(full)
    before = requests_sent(full)
    await timed_poll(full)
    per_full = requests_sent(full) - before
    await timed_poll(incremental)  # the first poll is always a full listing
    counts = []
    for _ in range(POLLS):
        sim.advance(INTERVAL_S)
        before = requests_sent(incremental)
        await timed_poll(incremental)
        counts.append(requests_sent(incremental) - before)
    snapshot = incremental.poller.state.snapshot
    assert snapshot is not None
    fallbacks = snapshot.listings.get("full", 0) - 1
    for target in (full, incremental):
        await target.client.aclose()
    return counts[WARM_UP:], per_full, fallbacks


async def run() -> list[Row]:
    with SimProcess(SIZE, active_fraction=0.01) as sim:
        steady, per_full, fallbacks = await steady_requests(sim, pagination="offset")
    mean = sum(steady) / len(steady)
    return [
        Row(
            "5. incremental requests/poll ÷ full listing's (100k, 1% active, 60 s apart)",
            mean / per_full,
            0.05,
            detail=(
                f"{mean:.1f} vs {per_full} requests per poll (max {max(steady)}); "
                f"{fallbacks} fallbacks to a full listing in {POLLS} polls"
            ),
        )
    ]
