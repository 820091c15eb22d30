"""Prometheus exporter for ModelArts training jobs (Open Telekom Cloud and Huawei Cloud)."""

# The one place the version is written (pyproject.toml reads it from here): a constant, because
# asking importlib.metadata at import cost every start ~50 ms of CPU (docs/performance.md).
__version__ = "0.1.0"
