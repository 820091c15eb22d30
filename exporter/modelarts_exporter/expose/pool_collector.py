"""How a target's resource pools look to Prometheus: the families of the "Resource pools"
section of :mod:`.metrics`, from the immutable :class:`~..snapshot.pool_state.PoolState`.

Sample (abridged)::

    modelarts_pool_info{parent_pool_id="",pool_id="gpu-train-5d0c…",pool_name="gpu-train",pool_type="Dedicate",project_id="p1",workspace_id="0"} 1.0
    modelarts_pool_accelerators_capacity{accelerator="gpu",pool_id="gpu-train-5d0c…",project_id="p1",source="nodes"} 24.0
    modelarts_pool_accelerators_free{accelerator="gpu",pool_id="gpu-train-5d0c…",project_id="p1",source="nodes"} 18.0
    modelarts_exporter_pool_up{project_id="p1"} 1.0
"""  # noqa: E501

from __future__ import annotations

from prometheus_client.core import InfoMetricFamily, Metric

from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.expose import metrics as m
from modelarts_exporter.expose.families import add, add_histogram
from modelarts_exporter.snapshot.labelcap import OTHER
from modelarts_exporter.snapshot.pool_state import ENDPOINTS, PoolRecord
from modelarts_exporter.snapshot.store import TargetState


def collect_pools(state: TargetState, f: dict[str, Metric]) -> None:
    """Add ``state``'s pool series to the families ``f`` (nothing when pools are not polled)."""
    pools = state.pools
    if pools is None:
        return
    project = state.project_id
    add(f[m.POOL_UP.name], [project], 1.0 if pools.up else 0.0)
    add(f[m.POOL_ENABLED.name], [project], 1.0 if pools.enabled else 0.0)
    if pools.last_success is not None:
        add(f[m.POOL_LAST_SUCCESS.name], [project], pools.last_success)
    if pools.poll_duration is not None:
        add_histogram(f[m.POOL_POLL_DURATION.name], [project], pools.poll_duration)
    for endpoint in ENDPOINTS:
        for reason in Reason:
            n = pools.errors.get((endpoint, reason), 0)
            add(f[m.POOL_POLL_ERRORS.name], [project, endpoint, reason.value], n)
    if pools.snapshot is None:
        return
    for record in pools.snapshot.pools:
        _collect_pool(project, record, f)


def _collect_pool(project: str, record: PoolRecord, f: dict[str, Metric]) -> None:
    pool = record.pool_id
    if pool != OTHER:
        info = f[m.POOL_INFO.name]
        assert isinstance(info, InfoMetricFamily)
        info.add_metric(
            [],
            {
                "project_id": project,
                "pool_id": pool,
                "pool_name": record.pool_name,
                "pool_type": record.pool_type,
                "workspace_id": record.workspace_id,
                "parent_pool_id": record.parent_pool_id,
            },
        )
    for phase, n in sorted(record.phases.items()):
        add(f[m.POOL_PHASE.name], [project, pool, phase], n)
    for (flavor, node_state), n in sorted(record.nodes.items()):
        add(f[m.POOL_NODES.name], [project, pool, flavor, node_state], n)
    for flavor, n in sorted(record.desired.items()):
        add(f[m.POOL_NODES_DESIRED.name], [project, pool, flavor], n)
    for (kind, source), cards in sorted(record.cards.items()):
        labels = [project, pool, kind, source]
        add(f[m.POOL_CAPACITY.name], labels, cards.capacity)
        if cards.allocated is not None:
            add(f[m.POOL_ALLOCATED.name], labels, cards.allocated)
        if cards.free is not None:
            add(f[m.POOL_FREE.name], labels, cards.free)
        if cards.unavailable is not None:
            add(f[m.POOL_UNAVAILABLE.name], [project, pool, kind], cards.unavailable)
