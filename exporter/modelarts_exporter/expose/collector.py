"""How the states look to Prometheus: a custom collector yielding fresh families per scrape.

Nothing here calls the cloud or keeps series: every family is built from the current immutable
states, so a label set that disappears from the data disappears from ``/metrics`` by itself.

Sample (abridged)::

    modelarts_training_job_versions{phase="running",project_id="p1",status="running"} 12.0
    modelarts_training_job_gpus{flavor_code="modelarts.p3.8xlarge",phase="running",pool_id="pool-a",project_id="p1"} 48.0
    modelarts_exporter_up{project_id="p1"} 1.0
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.expose import metrics as m
from modelarts_exporter.expose.families import add, add_histogram, new_family
from modelarts_exporter.expose.pool_collector import collect_pools
from modelarts_exporter.listing.source import LISTING_KINDS
from modelarts_exporter.snapshot.labelcap import CAPPED_LABELS
from modelarts_exporter.snapshot.store import ReloadStatus, TargetState
from modelarts_exporter.snapshot.users import UserUsage


class StateCollector(Collector):
    """Yields every family of :mod:`modelarts_exporter.expose.metrics` from the states at hand."""

    def __init__(
        self,
        states: Callable[[], Sequence[TargetState]],
        version: str,
        shard: tuple[int, int] = (0, 1),
        web_config: Callable[[], ReloadStatus | None] = lambda: None,
    ) -> None:
        self._states = states
        self._version = version
        self._shard = shard
        self._web_config = web_config

    def describe(self) -> Iterator[Metric]:
        # Registration must not run collect(): the states may not exist yet.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        families = {spec.name: new_family(spec) for spec in m.ALL}
        states = sorted(self._states(), key=lambda s: s.target)
        for state in states:
            self._collect_target(state, families)
            collect_pools(state, families)
            if state.snapshot is not None and state.snapshot.users is not None:
                _add_users(state.project_id, state.snapshot.users, families)
        if not any(s.snapshot is not None and s.snapshot.users is not None for s in states):
            for spec in m.USER_FAMILIES:
                del families[spec.name]
        info = families[m.BUILD_INFO.name]
        assert isinstance(info, InfoMetricFamily)
        info.add_metric([], {"version": self._version})
        shard = families[m.SHARD_INFO.name]
        assert isinstance(shard, InfoMetricFamily)
        shard.add_metric([], {"shard": str(self._shard[0]), "total_shards": str(self._shard[1])})
        web = self._web_config()
        if web is not None:
            add(families[m.WEB_CONFIG_RELOAD_OK.name], [], 1.0 if web.successful else 0.0)
            add(families[m.WEB_CONFIG_RELOAD_TIME.name], [], web.last_success)
        return iter(families.values())

    @staticmethod
    def _collect_target(state: TargetState, f: dict[str, Metric]) -> None:
        project = state.project_id
        add(f[m.UP.name], [project], 1.0 if state.up else 0.0)
        if state.last_success is not None:
            add(f[m.LAST_SUCCESS.name], [project], state.last_success)
        if state.poll_duration is not None:
            add_histogram(f[m.POLL_DURATION.name], [project], state.poll_duration)
        for reason in Reason:
            add(f[m.POLL_ERRORS.name], [project, reason.value], state.errors.get(reason, 0))
        for code, n in sorted(state.api_requests.items()):
            add(f[m.API_REQUESTS.name], [project, code], n)
        snap = state.snapshot
        if snap is None:
            return
        v2: dict[tuple[str, str], int] = {}
        jobs = []
        for status, n in sorted(snap.by_status.items(), key=lambda item: item[0].code):
            if status.kind is None:
                add(f[m.VERSIONS.name], [project, status.name, status.phase.value], n)
                continue
            jobs.append(([project, status.kind, status.name, status.phase.value], n))
            key = (status.name, status.phase.value)
            v2[key] = v2.get(key, 0) + n
        for labels, n in sorted(jobs):
            add(f[m.JOBS.name], labels, n)
        # v2 jobs in the family dashboards read, summed over kinds (one series per status).
        for (name, phase), n in sorted(v2.items()):
            add(f[m.VERSIONS.name], [project, name, phase], n)
        for (pool, flavor, phase), usage in sorted(snap.by_pool.items()):
            labels = [project, pool, flavor, phase.value]
            add(f[m.POOL_VERSIONS.name], labels, usage.versions)
            add(f[m.GPUS.name], labels, usage.gpus)
            add(f[m.NPUS.name], labels, usage.npus)
        for (pool, flavor, phase), n in snap.accelerators_unknown.items():
            add(f[m.ACCELERATORS_UNKNOWN.name], [project, pool, flavor, phase.value], n)
        for (pool, phase), histogram in sorted(snap.durations.items()):
            add_histogram(f[m.DURATION.name], [project, pool, phase.value], histogram)
        for pool, histogram in sorted(snap.queue.items()):
            add_histogram(f[m.QUEUE.name], [project, pool], histogram)
        for (pool, flavor), seconds in sorted(snap.gpu_seconds.items()):
            add(f[m.GPU_SECONDS.name], [project, pool, flavor], seconds)
        for (pool, flavor), seconds in sorted(snap.npu_seconds.items()):
            add(f[m.NPU_SECONDS.name], [project, pool, flavor], seconds)
        for phase, seconds in snap.oldest_seconds.items():
            add(f[m.OLDEST.name], [project, phase.value], seconds)
        for phase, job in snap.oldest_jobs.items():
            labels = [project, phase.value, job.job_id, job.job_name]
            add(f[m.OLDEST_JOB.name], labels, job.seconds)
        add(f[m.REPORTED.name], [project], snap.reported_total)
        for kind in LISTING_KINDS:
            add(f[m.LISTINGS.name], [project, kind], snap.listings.get(kind, 0))
        for label in CAPPED_LABELS:
            add(f[m.LABEL_OVERFLOW.name], [project, label], snap.overflow.get(label, 0))


def _add_users(project: str, users: UserUsage, f: dict[str, Metric]) -> None:
    for (user, phase), cards in users.cards.items():
        labels = [project, user, phase.value]
        add(f[m.USER_JOBS.name], labels, cards.jobs)
        add(f[m.USER_GPUS.name], labels, cards.gpus)
        add(f[m.USER_NPUS.name], labels, cards.npus)
    for (user, phase), seconds in users.gpu_seconds.items():
        add(f[m.USER_GPU_SECONDS.name], [project, user, phase.value], seconds)
    for (user, phase), seconds in users.npu_seconds.items():
        add(f[m.USER_NPU_SECONDS.name], [project, user, phase.value], seconds)
    add(f[m.LABEL_OVERFLOW.name], [project, "user"], users.overflow)
