"""Reading a project's resource pools: the pool list, then per pool the best source of its cards.

Which pools: every pool of ``GET /v2/{project_id}/pools`` whose scope (``spec.scope`` or
``status.scope``) includes ``Train``, physical and logical alike. Per pool, its node list
(paged by ``limit`` and ``continue``); for the pools whose nodes could not be read, the runtime
metrics of every pool (one call); and the flavor catalogue (paged, kept for
``FLAVOR_CACHE_SECONDS``) when a pool needs it: for the kind of a runtime key such as ``tnt004``
or for a pool that has neither of the other sources. A source that fails is recorded and the next
one tried; only a failed pool list fails the reading (:class:`PollError`, with ``status`` 403
when the permission is missing). A 404 on a pool's nodes right after the list means the pool was
deleted meanwhile: it is left out, not a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

import anyio

from modelarts_exporter.cloud.client import ApiClient
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.pool_models import (
    Node,
    Pool,
    PoolMetrics,
    RuntimeMetrics,
    next_token,
    parse_flavors,
    parse_nodes,
    parse_pools,
    parse_runtime,
)
from modelarts_exporter.cloud.quantity import CardKind, card_kind, maybe_cards
from modelarts_exporter.cloud.v2_models import parse_v2_error_body

log = logging.getLogger(__name__)

NODE_PAGE = 500
"""Nodes asked per page: the API's maximum and default."""
MAX_PAGES = 1000
"""A listing that has not ended after this many pages is the API going round in circles."""
CONCURRENT_POOLS = 4
TRAIN = "Train"
NAME_LABEL = "os.modelarts/name"
FlavorCards = tuple[CardKind | None, float]
"""A node flavor's kind of card (``None``: none) and cards per node."""
Failure = tuple[str, PollError]
"""An endpoint (``nodes``, ``runtime``, ``flavors``) that failed during a reading, and how."""


def trains(pool: Pool) -> bool:
    spec, status = pool["spec"], pool["status"]
    if spec is not None and TRAIN in (spec["scope"] or ()):
        return True
    scopes = status["scope"] if status is not None else None
    return any(scope["scopeType"] == TRAIN for scope in scopes or ())


def pool_flavors(pool: Pool) -> set[str]:
    """Every node flavor the pool names, desired or present."""
    spec, status = pool["spec"], pool["status"]
    desired = spec["resources"] if spec is not None else None
    found = {r["flavor"] for r in desired or () if r["flavor"]}
    states = status["resources"] if status is not None else None
    for counts in (states or {}).values():
        found |= {c["flavor"] for c in counts or () if c["flavor"]}
    return found


def runtime_values(item: PoolMetrics) -> tuple[dict[str, float], dict[str, float]]:
    """A runtime item's capacity and allocated resource maps (empty when absent)."""
    table = item["table"]
    if table is None:
        return {}, {}
    capacity, allocated = table["capacity"], table["allocated"]
    return (
        (capacity["value"] if capacity is not None else None) or {},
        (allocated["value"] if allocated is not None else None) or {},
    )


def _unknown_keys(item: PoolMetrics) -> bool:
    """Whether a runtime item has a card key whose kind only the flavors can tell."""
    capacity, allocated = runtime_values(item)
    return any(maybe_cards(key) and card_kind(key) is None for key in capacity.keys() | allocated)


def runtime_item(pool: Pool, items: Iterable[PoolMetrics]) -> PoolMetrics | None:
    """The runtime item of ``pool``: by id (``metadata.name``), else by display name (notes
    §2c: whether ``metadata.name`` is the id is not certain)."""
    by_name: PoolMetrics | None = None
    display = (pool["metadata"]["labels"] or {}).get(NAME_LABEL)
    for item in items:
        metadata = item["metadata"]
        if metadata is None:
            continue
        if metadata["name"] == pool["metadata"]["name"]:
            return item
        if display and (metadata["labels"] or {}).get(NAME_LABEL) == display:
            by_name = item
    return by_name


@dataclass(frozen=True, slots=True)
class PoolReading:
    """One reading of a project's Train pools and what was learnt of each."""

    pools: tuple[Pool, ...]
    nodes: Mapping[str, tuple[Node, ...]]
    """The node list of each pool whose nodes could be read, by pool id."""
    runtime: tuple[PoolMetrics, ...] | None
    """The runtime metrics, when some pool needed them and they could be read."""
    flavors: Mapping[str, FlavorCards] | None
    """The flavor catalogue, when some pool needed it and it is known."""
    failures: tuple[Failure, ...]


class PoolLister:
    """Reads one project's pools through ``client``; keeps the flavor catalogue between polls."""

    def __init__(
        self,
        client: ApiClient,
        project_id: str | None,
        *,
        resolve_project: Callable[[], Awaitable[str]] | None = None,
        flavor_cache_seconds: float = 21600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._project_id = project_id
        self._resolve = resolve_project
        self._cache_seconds = flavor_cache_seconds
        self._clock = clock
        self._flavors: Mapping[str, FlavorCards] | None = None
        self._flavors_at = 0.0
        self.stage = "pools"
        """The endpoint being read now (what a deadline that strikes is counted against)."""

    async def _project(self) -> str:
        if self._project_id is None:
            if self._resolve is None:
                raise PollError(Reason.CLIENT_ERROR, "no project id to read pools of")
            self._project_id = await self._resolve()
        return quote(self._project_id, safe="")

    async def read(self) -> PoolReading:
        self.stage = "pools"
        project = await self._project()
        listed = await self._client.get(
            f"/v2/{project}/pools", {}, parse_pools, parse_v2_error_body
        )
        pools = [pool for pool in listed["items"] if trains(pool)]
        failures: list[Failure] = []
        self.stage = "nodes"
        nodes, deleted = await self._all_nodes(project, pools, failures)
        pools = [pool for pool in pools if pool["metadata"]["name"] not in deleted]
        runtime = None
        if any(pool["metadata"]["name"] not in nodes for pool in pools):
            self.stage = "runtime"
            try:
                runtime = await self._client.get(
                    f"/v2/{project}/metrics/runtime/pools", {}, parse_runtime, parse_v2_error_body
                )
            except PollError as error:
                failures.append(("runtime", error))
        flavors = None
        if self._needs_flavors(pools, nodes, runtime):
            self.stage = "flavors"
            flavors = await self._flavor_table(project, failures)
        return PoolReading(
            pools=tuple(pools),
            nodes=MappingProxyType(nodes),
            runtime=None if runtime is None else tuple(runtime["items"]),
            flavors=flavors,
            failures=tuple(failures),
        )

    @staticmethod
    def _needs_flavors(
        pools: list[Pool], nodes: Mapping[str, object], runtime: RuntimeMetrics | None
    ) -> bool:
        """Whether a pool without its node list needs the catalogue: runtime metrics that do
        not list it, or list it with a key such as ``tnt004`` whose kind the flavors tell."""
        for pool in pools:
            if pool["metadata"]["name"] in nodes:
                continue
            item = runtime_item(pool, runtime["items"]) if runtime is not None else None
            if item is None or _unknown_keys(item):
                return True
        return False

    async def _all_nodes(
        self, project: str, pools: list[Pool], failures: list[Failure]
    ) -> tuple[dict[str, tuple[Node, ...]], set[str]]:
        nodes: dict[str, tuple[Node, ...]] = {}
        deleted: set[str] = set()
        limiter = anyio.CapacityLimiter(CONCURRENT_POOLS)

        async def one(pool_id: str) -> None:
            async with limiter:
                try:
                    nodes[pool_id] = await self._nodes(project, pool_id)
                except PollError as error:
                    if error.status == 404 and not (error.code or "").startswith("APIG"):
                        deleted.add(pool_id)  # deleted since it was listed
                        log.debug("pool deleted while polled pool=%s", pool_id)
                    else:
                        failures.append(("nodes", error))

        async with anyio.create_task_group() as group:
            for pool in pools:
                group.start_soon(one, pool["metadata"]["name"])
        return nodes, deleted

    async def _nodes(self, project: str, pool_id: str) -> tuple[Node, ...]:
        path = f"/v2/{project}/pools/{quote(pool_id, safe='')}/nodes"
        found: list[Node] = []
        token = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params = {"limit": str(NODE_PAGE)}
            if token:
                params["continue"] = token
            page = await self._client.get(path, params, parse_nodes, parse_v2_error_body)
            found += page["items"]
            token = next_token(page["metadata"])
            if not token:
                return tuple(found)
            if token in seen:
                break
            seen.add(token)
        raise PollError(Reason.INVALID_RESPONSE, f"nodes of pool {pool_id}: paging does not end")

    async def _flavor_table(
        self, project: str, failures: list[Failure]
    ) -> Mapping[str, FlavorCards] | None:
        fresh = self._clock() - self._flavors_at < self._cache_seconds
        if self._flavors is not None and fresh:
            return self._flavors
        table: dict[str, FlavorCards] = {}
        token = ""
        try:
            for _ in range(MAX_PAGES):
                params = {"limit": str(NODE_PAGE)}
                if token:
                    params["continue"] = token
                page = await self._client.get(
                    f"/v1/{project}/resourceflavors", params, parse_flavors, parse_v2_error_body
                )
                for flavor in page["items"]:
                    spec = flavor["spec"]
                    gpu, npu = (spec["gpu"], spec["npu"]) if spec is not None else (None, None)
                    if gpu is not None and gpu["size"]:
                        table[flavor["metadata"]["name"]] = ("gpu", gpu["size"])
                    elif npu is not None and npu["size"]:
                        table[flavor["metadata"]["name"]] = ("npu", npu["size"])
                    else:
                        table[flavor["metadata"]["name"]] = (None, 0.0)
                token = next_token(page["metadata"])
                if not token:
                    break
            else:
                raise PollError(Reason.INVALID_RESPONSE, "resource flavors: paging does not end")
        except PollError as error:
            failures.append(("flavors", error))
            return self._flavors  # a stale table still says how many cards a flavor has
        self._flavors = MappingProxyType(table)
        self._flavors_at = self._clock()
        return self._flavors
