"""The compact columns a listing is held in: the inventory sorted by id with its columns aligned,
active versions as arrays of key numbers, and the new ids of a listing by page ranges. Each is
checked against the plain Python structure it replaces."""

from __future__ import annotations

import random
from array import array
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.listing.active import Active, Keys, gauge_key, user_key
from modelarts_exporter.listing.inventory import Inventory
from modelarts_exporter.listing.newids import NewIds
from support.properties import examples
from support.simulation import make_version

_IDS = st.integers(min_value=0, max_value=2**63 - 1)


def _pages(ids: list[int], sizes: list[int], reverse: list[bool]) -> list[list[int]]:
    """``ids`` cut into pages of ``sizes`` (cycled), each ascending or descending."""
    ordered, pages, start = sorted(ids), [], 0
    for n in range(len(ids)):
        if start >= len(ordered):
            break
        size = sizes[n % len(sizes)]
        page = ordered[start : start + size]
        pages.append(page[::-1] if reverse[n % len(reverse)] else page)
        start += size
    return pages


@settings(max_examples=examples(300), deadline=None)
@given(
    ids=st.lists(_IDS, unique=True, max_size=300),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    reverse=st.lists(st.booleans(), min_size=1, max_size=5),
    shuffle=st.randoms(use_true_random=False),
)
def test_new_versions_in_any_page_order_become_an_inventory_sorted_by_id_with_rows_intact(
    ids: list[int], sizes: list[int], reverse: list[bool], shuffle: random.Random
) -> None:
    pages = _pages(ids, sizes, reverse)
    shuffle.shuffle(pages)
    inventory = _inventory_of(pages)
    assert list(inventory.ids) == sorted(ids)
    assert list(inventory.created) == [vid % 9_999_991 for vid in inventory.ids]
    assert list(inventory.workspace) == [vid % 7 for vid in inventory.ids]
    assert list(inventory.flags) == [vid % 3 for vid in inventory.ids]
    assert all(inventory.find(vid) == row for row, vid in enumerate(inventory.ids))


def _inventory_of(pages: list[list[int]], *, marked: bool = False) -> Inventory:
    new = Inventory()
    for page in pages:
        if marked:
            new.mark_page()
            if page[0] % 2:  # a page before it that added no rows (all were known)
                new.mark_page()
        for vid in page:
            new.append(vid, vid % 9_999_991, vid % 7, vid % 3)
    if marked:
        new.mark_page()  # a last page that added none
    return Inventory().with_changes(None, bytearray(), new)


@settings(max_examples=examples(200), deadline=None)
@given(
    ids=st.lists(_IDS, unique=True, min_size=32, max_size=400),
    sizes=st.lists(st.integers(16, 64), min_size=1, max_size=5),
    overlap=st.booleans(),
    marked=st.booleans(),
    shuffle=st.randoms(use_true_random=False),
)
def test_ascending_pages_in_any_order_are_joined_whole_or_sorted_when_two_overlap(
    ids: list[int], sizes: list[int], overlap: bool, marked: bool, shuffle: random.Random
) -> None:
    # Long ascending runs: the first poll's pages, which are put in order by run, not by row.
    pages = _pages(ids, sizes, [False])
    if overlap and len(pages) > 1:  # two pages' id ranges interleave: no order of runs is sorted
        pages[0][-1], pages[1][0] = pages[1][0], pages[0][-1]
        pages[0].sort()
        pages[1].sort()
    shuffle.shuffle(pages)
    inventory = _inventory_of(pages, marked=marked)
    assert list(inventory.ids) == sorted(ids)
    assert list(inventory.created) == [vid % 9_999_991 for vid in inventory.ids]
    assert list(inventory.workspace) == [vid % 7 for vid in inventory.ids]
    assert list(inventory.flags) == [vid % 3 for vid in inventory.ids]
    assert not inventory.pages


def test_new_versions_below_the_held_ones_are_merged_into_their_place() -> None:
    held = Inventory().with_changes(None, bytearray(), _inventory([50, 10, 30]))
    grown = held.with_changes(bytearray(b"\x01\x00\x01"), bytearray([1, 2, 3]), _inventory([40, 5]))
    # The unseen row (id 30, flags 2) is dropped; the kept rows keep the flags given.
    assert list(grown.ids) == [5, 10, 40, 50]
    assert list(grown.flags) == [0, 1, 0, 3]
    assert grown.find(30) == -1


def _inventory(ids: list[int]) -> Inventory:
    inventory = Inventory()
    for vid in ids:
        inventory.append(vid, vid, 0, 0)
    return inventory


_TEXT = st.one_of(st.none(), st.text(max_size=8))
_VERSIONS = st.lists(
    st.builds(
        make_version,
        _IDS,
        st.integers(0, 20),
        create_time=st.one_of(st.none(), st.integers(0, 2**40)),
        pool_id=st.sampled_from([None, "pool-a", "pool-b"]),
        flavor_code=st.sampled_from([None, "f1", "f2"]),
        gpu_num=st.one_of(st.none(), st.integers(0, 8)),
        npu_num=st.one_of(st.none(), st.integers(0, 8)),
        user_name=_TEXT,
        version_name=_TEXT,
        v2_id=_TEXT,
    ),
    max_size=40,
)


@settings(max_examples=examples(300), deadline=None)
@given(first=_VERSIONS, second=_VERSIONS, drop=st.sets(_IDS, max_size=5))
def test_active_versions_keep_every_field_the_snapshot_reads(
    first: list[Version], second: list[Version], drop: set[int]
) -> None:
    keys = Keys()
    active, more = Active(keys), Active(keys)
    for version in first:
        active.append(version)
    for version in second:
        more.append(version)
    active.extend(more)
    every = [*first, *second]
    drop |= {v.version_id for v in every[::3]}
    kept = [v for v in every if v.version_id not in drop]
    left = active.without(drop)
    assert len(left) == len(kept)
    assert list(left.statuses()) == [v.status for v in kept]
    assert left.gauge_counts() == Counter(map(gauge_key, kept))
    assert left.user_counts() == Counter(map(user_key, kept))
    for row, v in enumerate(kept):
        held = left.version(row)
        assert held.version_id == v.version_id
        assert held.create_time == (v.create_time or 0)
        assert held.version_name == (v.version_name or "")
        assert held.v2_id == (v.v2_id or "")


def test_names_that_are_not_valid_utf8_come_back_as_they_were_parsed() -> None:
    active = Active()
    active.append(make_version(1, 10, version_name="lone \ud800 surrogate", v2_id="j\u00e9b"))
    assert active.version(0).version_name == "lone \ud800 surrogate"
    assert active.version(0).v2_id == "j\u00e9b"


def test_active_versions_of_different_keys_are_not_joined() -> None:
    with pytest.raises(ValueError, match="same keys"):
        Active().extend(Active())


@settings(max_examples=examples(300), deadline=None)
@given(
    ids=st.lists(st.integers(0, 500), unique=True, max_size=120),
    sizes=st.lists(st.integers(1, 15), min_size=1, max_size=4),
    reverse=st.lists(st.booleans(), min_size=1, max_size=4),
    shuffle=st.randoms(use_true_random=False),
    probes=st.lists(st.tuples(st.integers(-5, 505), st.integers(0, 60)), max_size=10),
    interleave=st.booleans(),
)
def test_new_ids_tell_every_held_id_a_page_range_could_collide_with(
    ids: list[int],
    sizes: list[int],
    reverse: list[bool],
    shuffle: random.Random,
    probes: list[tuple[int, int]],
    interleave: bool,
) -> None:
    pages = _pages(ids, sizes, reverse)
    if interleave and len(pages) > 1:  # ranges that overlap: ids not growing with creation
        pages[0], pages[1] = pages[0] + pages[1][:1], pages[1][1:]
    shuffle.shuffle(pages)
    held = NewIds()
    for page in pages:
        held.add(array("q", page))
    every = {vid for page in pages for vid in page}
    if held.set is not None:
        assert held.set == every
        return
    for lo, width in probes:
        hi = lo + width
        assert {vid for vid in every if lo <= vid <= hi} <= set(held.within(lo, hi))
