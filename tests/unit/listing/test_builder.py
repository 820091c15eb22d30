"""Folding a first poll's pages into a listing: whatever order and shape the pages come in (out
of order, descending, repeating a version, interleaved ids), the listing holds each version once,
its first copy, as the plain count over the distinct versions says."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import status_of
from modelarts_exporter.listing.active import gauge_key, user_key
from modelarts_exporter.listing.builder import ListingBuilder
from modelarts_exporter.listing.inventory import DONE, STARTED, Inventory
from support.properties import examples
from support.simulation import make_version


def _version(vid: int, status: int, start: bool) -> Version:
    return make_version(
        vid,
        status,
        create_time=vid * 10 or None,
        start_time=vid * 10 + 5 if start else None,
        pool_id=f"pool-{vid % 3}",
        gpu_num=vid % 4,
        user_name=f"user-{vid % 2}",
    )


@settings(max_examples=examples(400), deadline=None)
@given(
    spec=st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from([1, 2, 5, 8, 10, 13, 22]), st.booleans()),
        max_size=150,
    ),
    size=st.integers(1, 30),
    repeats=st.lists(st.integers(0, 149), max_size=5),
    reverse=st.booleans(),
    swap=st.booleans(),
    shuffle=st.randoms(use_true_random=False),
    workspaces=st.integers(1, 3),
)
def test_a_first_poll_holds_each_version_once_as_its_first_copy(
    spec: list[tuple[int, int, bool]],
    size: int,
    repeats: list[int],
    reverse: bool,
    swap: bool,
    shuffle: random.Random,
    workspaces: int,
) -> None:
    by_id = {vid: _version(vid, status, start) for vid, status, start in spec}
    versions = sorted(by_id.values(), key=lambda v: v.version_id, reverse=reverse)
    versions += [versions[i] for i in repeats if i < len(versions)]  # served twice
    if swap and len(versions) > 2:  # ids that do not follow the listing's order
        versions[0], versions[-2] = versions[-2], versions[0]
    pages = [versions[i : i + size] for i in range(0, len(versions), size)]
    shuffle.shuffle(pages)
    builder = ListingBuilder(Inventory(), observe=False, users=True)
    first: dict[int, tuple[int, Version]] = {}
    for number, chunk in enumerate(_split(pages, workspaces)):
        builder.start_pass(number)
        for page in chunk:
            builder.add_page(page)
            for version in page:
                first.setdefault(version.version_id, (number, version))
        builder.finish_workspace(len(chunk))
    listed, found = builder.result()

    def terminal(v: Version) -> bool:
        return status_of(v.status).phase.terminal

    distinct = [v for _, v in first.values()]
    done = [v for v in distinct if terminal(v)]
    assert listed.terminal == Counter(map(gauge_key, done))
    assert listed.users == Counter(map(user_key, done))
    assert sorted(listed.active.ids) == sorted(v.version_id for v in distinct if not terminal(v))
    assert listed.active.gauge_counts() == Counter(
        gauge_key(v) for v in distinct if not terminal(v)
    )
    inventory = listed.inventory
    assert list(inventory.ids) == sorted(first)
    for row, vid in enumerate(inventory.ids):
        workspace, v = first[vid]
        want = DONE if terminal(v) else STARTED if v.start_time else 0
        assert (inventory.flags[row], inventory.workspace[row]) == (want, workspace)
        assert inventory.created[row] == (v.create_time or 0)
    assert found.finished == [] and found.queued == []  # a baseline observes nothing


def _split(pages: list[list[Version]], parts: int) -> list[list[list[Version]]]:
    return [pages[i::parts] for i in range(parts)]
