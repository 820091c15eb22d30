"""The few calls every collector makes on prometheus-client's families: one empty family per
declared metric, and samples added to it (a histogram from the snapshot's frozen buckets)."""

from __future__ import annotations

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from modelarts_exporter.expose import metrics as m
from modelarts_exporter.snapshot.aggregate import Histogram


def new_family(spec: m.MetricSpec) -> Metric:
    if spec.kind == "gauge":
        return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    return InfoMetricFamily(spec.name.removesuffix("_info"), spec.help, labels=spec.labels)


def add(family: Metric, labels: list[str], value: float) -> None:
    assert isinstance(family, GaugeMetricFamily | CounterMetricFamily)
    family.add_metric(labels, value)


def add_histogram(family: Metric, labels: list[str], histogram: Histogram) -> None:
    assert isinstance(family, HistogramMetricFamily)
    edges = [repr(float(bound)) for bound in histogram.bounds] + ["+Inf"]
    buckets = [(le, float(n)) for le, n in zip(edges, histogram.buckets, strict=True)]
    family.add_metric(labels, buckets, histogram.total)
