"""What the fake ModelArts service answers on the four resource-pool endpoints (pools notes §2).

``GET /v2/{project_id}/pools``, ``GET /v2/{project_id}/pools/{pool_name}/nodes`` (paged by
``limit`` and ``continue``), ``GET /v2/{project_id}/metrics/runtime/pools`` and
``GET /v1/{project_id}/resourceflavors`` (paged), rendered from :mod:`.pools`. Errors are the
resource APIs' ``error_code``/``error_msg`` bodies. :class:`PoolSim` holds the options tests and
``simulate`` set: the pool API forbidden (ModelArts' 403 or the gateway's), latency on these
endpoints only, an endpoint failing with a status (or ``invalid``: a 200 of the wrong shape),
pools deleted between the list and their nodes, page sizes and the runtime-metrics variant.

Pool requests bypass the general fault plan and request statistics of the job APIs (they keep
the gateway's authentication): the job listing's tests count their own requests exactly.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .api import Answer
from .pools import FLAVORS, UNUSED_FLAVORS, Flavor, PoolModel, SimNode, SimPool, counts, desired
from .v2_api import v2_error

Endpoint = Literal["pools", "nodes", "runtime", "flavors"]
Forbidden = Literal["modelarts", "apig"]
RuntimeVariant = Literal["tnt004", "node-keys", "by-name"]
"""``tnt004``: the GPU key as OTC's 2025 docs write it (its kind only the flavors tell);
``node-keys``: the nodes' keys; ``by-name``: tnt004, and ``metadata.name`` not the pool id but
a short old-style name (the item is found by ``labels["os.modelarts/name"]``)."""
ENDPOINTS: Final[tuple[Endpoint, ...]] = ("pools", "nodes", "runtime", "flavors")
_ROUTES: Final = (
    ("nodes", re.compile(r"/v2/([^/]+)/pools/([^/]+)/nodes/?")),
    ("pools", re.compile(r"/v2/([^/]+)/pools/?")),
    ("runtime", re.compile(r"/v2/([^/]+)/metrics/runtime/pools/?")),
    ("flavors", re.compile(r"/v1/([^/]+)/resourceflavors/?")),
)
CREATED: Final = "2025-09-14T08:21:05Z"


def route(method: str, path: str) -> tuple[Endpoint, str, str] | None:
    """The endpoint, the project and the pool (or "") of a pool API request."""
    if method != "GET":
        return None
    for endpoint, pattern in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            groups = match.groups()
            return endpoint, groups[0], groups[1] if len(groups) > 1 else ""  # type: ignore[return-value]
    return None


@dataclass
class PoolSim:
    """The pools served and how they misbehave; every field may change while serving."""

    model: PoolModel
    forbidden: Forbidden | None = None
    latency_seconds: float = 0.0
    failing: dict[Endpoint, int | Literal["invalid"]] = field(default_factory=dict)
    vanished: set[str] = field(default_factory=set)
    """Pools listed but gone when their nodes are asked for (deleted in between)."""
    node_page_size: int = 500
    flavor_page_size: int = 500
    runtime_variant: RuntimeVariant = "tnt004"
    requests: Counter[str] = field(default_factory=Counter)
    """Requests per endpoint."""

    def truth(self) -> dict[str, Any]:
        """Per Train pool id, what the exporter must show (:class:`~.pools.PoolTruth`)."""
        return dict(self.model.truth(frozenset(self.vanished)))

    def arrive(self, endpoint: Endpoint, stopping: threading.Event) -> bool:
        """Count a request, then wait out the latency; ``True`` when the server stops first."""
        self.requests[endpoint] += 1
        return self.latency_seconds > 0 and stopping.wait(self.latency_seconds)

    def answer(self, endpoint: Endpoint, project: str, pool_id: str, query: dict[str, str],
               project_id: str) -> Answer:  # fmt: skip
        if self.forbidden == "apig":
            return Answer(403, {"error_code": "APIG.0303", "error_msg": "Incorrect app auth."})
        if self.forbidden == "modelarts":
            return v2_error(
                403, "ModelArts.0203", "Invalid token, no permission modelarts:pool:list."
            )
        failure = self.failing.get(endpoint)
        if failure == "invalid":
            return Answer(200, {"items": [{"metadata": "not an object"}]})
        if failure is not None:
            return v2_error(failure, f"ModelArts.5000{failure}", f"{endpoint} failed on purpose")
        if project != project_id:
            return v2_error(404, "ModelArts.2786", "The project ID in the URL does not match.")
        if endpoint == "pools":
            return Answer(200, {"apiVersion": "v2", "kind": "PoolList", "items": self._pools()})
        if endpoint == "nodes":
            return self._nodes(pool_id, query)
        if endpoint == "runtime":
            return Answer(200, {"apiVersion": "v2", "kind": "PoolMetricsList",
                                "items": self._runtime()})  # fmt: skip
        return self._flavors(query)

    def _pools(self) -> list[dict[str, Any]]:
        layout = self.model.layout()
        return [_pool(pool, layout[pool.id]) for pool in self.model.pools]

    def _nodes(self, pool_id: str, query: dict[str, str]) -> Answer:
        if self.model.pool(pool_id) is None or pool_id in self.vanished:
            return v2_error(404, "ModelArts.50015001", f"Pool {pool_id} not found.")
        nodes = [_node(node, i) for i, node in enumerate(self.model.layout()[pool_id])]
        return _paged("NodeList", nodes, query, self.node_page_size)

    def _runtime(self) -> list[dict[str, Any]]:
        layout = self.model.layout()
        return [self._metrics(pool, layout[pool.id]) for pool in self.model.pools]

    def _metrics(self, pool: SimPool, nodes: list[SimNode]) -> dict[str, Any]:
        capacity: dict[str, Any] = {"cpu": 4 * len(nodes), "memory": f"{15548 * len(nodes)}Mi"}
        allocated: dict[str, Any] = {"cpu": "5", "memory": "15548Mi"}
        for node in nodes:
            flavor = node.flavor
            if flavor.key is None or node.phase != "Available":
                continue
            key = flavor.key
            if self.runtime_variant != "node-keys" and flavor.kind == "gpu":
                key = "tnt004"
            capacity[key] = capacity.get(key, 0) + flavor.per_node  # a number
            allocated[key] = allocated.get(key, 0) + node.taken
        for key, value in allocated.items():
            if key not in ("cpu", "memory"):
                allocated[key] = f"{value * 1000}m"  # a quantity string, as in the samples
        name = pool.id if self.runtime_variant != "by-name" else f"{pool.name[:10]}-pool"
        return {
            "metadata": {"name": name, "labels": {"os.modelarts/name": pool.name,
                                                  "os.modelarts/workspace.id": "0"}},
            "table": {
                "capacity": {"value": capacity, "maxValue": capacity, "window": "1m",
                             "timestamp": "2025-09-14T09:00:00Z"},
                "allocated": {"value": allocated, "window": "1m",
                              "timestamp": "2025-09-14T09:00:00Z"},
            },
        }  # fmt: skip

    def _flavors(self, query: dict[str, str]) -> Answer:
        items = [_flavor(f) for f in (*FLAVORS.values(), *UNUSED_FLAVORS)]
        answer = _paged("ResourceFlavorList", items, query, self.flavor_page_size)
        if isinstance(answer.payload, dict):
            answer.payload["apiVersion"] = "v1"
        return answer


def _paged(kind: str, items: list[dict[str, Any]], query: dict[str, str], cap: int) -> Answer:
    """One page of ``items``: ``limit`` (0-500, 0 or none: 500; at most ``cap``) from the
    position the ``continue`` token names."""
    token = query.get("continue") or ""
    start = 0
    if token:
        match = re.fullmatch(r"c([0-9]{1,9})\.page", token)
        if match is None:
            return v2_error(400, "ModelArts.50004000", "Invalid continue token.")
        start = int(match.group(1))
    raw = query.get("limit") or "500"
    if not raw.isdigit() or not 0 <= int(raw) <= 500:
        return v2_error(400, "ModelArts.50004000", f"Invalid limit {raw!r}.")
    limit = min(int(raw) or 500, cap)
    page = items[start : start + limit]
    rest = len(items) - start - len(page)
    following = f"c{start + len(page)}.page" if rest > 0 else ""
    metadata = {"continue": following, "remainingItemCount": rest}
    return Answer(200, {"apiVersion": "v2", "kind": kind, "metadata": metadata, "items": page})


def _states(pool: SimPool, nodes: list[SimNode]) -> dict[str, Any]:
    by_state: dict[str, list[dict[str, Any]]] = {}
    for (flavor, state), n in sorted(counts(nodes).items()):
        entry = {"flavor": flavor, "count": n, "azs": [{"az": "eu-de-01", "count": n}]}
        by_state.setdefault(state, []).append(entry)
    if pool.shape == "object":
        return {state: entries[0] for state, entries in by_state.items()}
    return dict(by_state)


def _pool(pool: SimPool, nodes: list[SimNode]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": pool.type,
        "scope": list(pool.scope),
        "resources": [
            {"flavor": f, "count": n, "maxCount": n} for f, n in sorted(desired(nodes).items())
        ],
        "network": {"name": f"network-{pool.id}"},
    }
    status: dict[str, Any] = {
        "phase": pool.phase,
        "root": pool.parent or pool.id,
        "scope": [{"scopeType": scope, "state": "Enabled"} for scope in pool.scope],
        "resources": _states(pool, nodes),
    }
    if pool.parent:
        status["parent"] = pool.parent
    labels = {
        "os.modelarts/name": pool.name,
        "os.modelarts/workspace.id": "0",
        "os.modelarts/resource.id": f"maos-{pool.name}-k3v9q",
    }
    return {
        "apiVersion": "v2",
        "kind": "Pool",
        "metadata": {"name": pool.id, "creationTimestamp": CREATED, "labels": labels,
                     "annotations": {"os.modelarts/billing.mode": "1"}},
        "spec": spec,
        "status": status,
    }  # fmt: skip


def _node(node: SimNode, index: int) -> dict[str, Any]:
    flavor = node.flavor
    resources: dict[str, Any] = {"cpu": flavor.cpu, "memory": flavor.memory}
    available: dict[str, Any] = {"cpu": "2970m", "memory": "6270Mi"}
    if flavor.key is not None:
        resources[flavor.key] = str(flavor.per_node)
        free = flavor.per_node - node.taken
        available[flavor.key] = free if index % 2 else str(free)  # numbers and strings mixed
    labels = {"os.modelarts.node/nodepool": f"{node.name.split('-node-')[0]}-default",
              "os.modelarts/billing.status": "0"}  # fmt: skip
    if node.bound:
        labels["os.modelarts.node/elastic.quota"] = node.bound
    return {
        "apiVersion": "v2",
        "kind": "Node",
        "metadata": {"name": node.name, "creationTimestamp": CREATED, "labels": labels},
        "spec": {"flavor": flavor.name},
        "status": {"phase": node.phase, "az": "eu-de-01", "privateIp": f"192.168.10.{index + 2}",
                   "resources": resources, "availableResources": available},
    }  # fmt: skip


def _flavor(flavor: Flavor) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "Dedicate", "cpuArch": "x86", "cpu": flavor.cpu,
                            "memory": flavor.memory, "billingModes": [0, 1]}  # fmt: skip
    if flavor.kind is not None:
        spec[flavor.kind] = {"type": flavor.key, "size": str(flavor.per_node), "memory": "64Gi"}
    return {
        "metadata": {"name": flavor.name, "labels": {"os.modelarts/scope": "Train.Infer"}},
        "spec": spec,
        "status": {"phase": {"eu-de-01": "normal"}},
    }
