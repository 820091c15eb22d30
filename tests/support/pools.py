"""What the pool series must say, from the simulator's own model of its pools (not from the
JSON it serves, nor from the exporter's derivation)."""

from __future__ import annotations

from typing import Any

from modelarts_exporter.simulator import SimulatorServer
from support.simulation import Samples


def pool_families(samples: Samples) -> dict[str, dict[tuple[str, ...], float]]:
    """The pool families of an exposition, each by its labels (``project_id`` left out)."""
    keys = {
        "modelarts_pool_info": (
            "pool_id",
            "pool_name",
            "pool_type",
            "workspace_id",
            "parent_pool_id",
        ),
        "modelarts_pool_phase": ("pool_id", "phase"),
        "modelarts_pool_nodes": ("pool_id", "node_flavor", "state"),
        "modelarts_pool_nodes_desired": ("pool_id", "node_flavor"),
        "modelarts_pool_accelerators_capacity": ("pool_id", "accelerator", "source"),
        "modelarts_pool_accelerators_allocated": ("pool_id", "accelerator", "source"),
        "modelarts_pool_accelerators_free": ("pool_id", "accelerator", "source"),
        "modelarts_pool_accelerators_unavailable": ("pool_id", "accelerator"),
    }
    found: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in keys}
    for (name, labels), value in samples.items():
        if name in keys:
            got = dict(labels)
            found[name][tuple(got[key] for key in keys[name])] = value
    return found


def expected_families(sim: SimulatorServer, source: str) -> dict[str, dict[tuple[str, ...], float]]:
    """What :func:`pool_families` must give when every pool's cards come from ``source``."""
    want: dict[str, dict[tuple[str, ...], Any]] = {
        name: {}
        for name in (
            "modelarts_pool_info", "modelarts_pool_phase", "modelarts_pool_nodes",
            "modelarts_pool_nodes_desired", "modelarts_pool_accelerators_capacity",
            "modelarts_pool_accelerators_allocated", "modelarts_pool_accelerators_free",
            "modelarts_pool_accelerators_unavailable",
        )
    }  # fmt: skip
    for pool_id, truth in sim.pools.truth().items():
        pool = truth.pool
        want["modelarts_pool_info"][(pool_id, pool.name, pool.type, "0", pool.parent)] = 1.0
        want["modelarts_pool_phase"][(pool_id, pool.phase)] = 1.0
        for (flavor, state), n in truth.nodes.items():
            want["modelarts_pool_nodes"][(pool_id, flavor, state)] = float(n)
        for flavor, n in truth.desired.items():
            want["modelarts_pool_nodes_desired"][(pool_id, flavor)] = float(n)
        for kind, cards in truth.cards.items():
            key = (pool_id, kind, source)
            want["modelarts_pool_accelerators_capacity"][key] = float(cards.capacity)
            if source != "flavors":
                want["modelarts_pool_accelerators_allocated"][key] = float(cards.allocated)
                want["modelarts_pool_accelerators_free"][key] = float(cards.free)
            if source == "nodes":
                want["modelarts_pool_accelerators_unavailable"][(pool_id, kind)] = float(
                    cards.unavailable
                )
    return want
