"""Prometheus exporter for ModelArts training jobs (Open Telekom Cloud and Huawei Cloud)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelarts-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
