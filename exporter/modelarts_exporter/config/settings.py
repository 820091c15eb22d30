"""The exporter's configuration: one pydantic-settings model, from flags, then the environment.

Every field is an environment variable ``MODELARTS_EXPORTER_<NAME>`` and a flag ``--<name>``
(kebab case); flags win (:mod:`.load` reads them). The single target's options are
:class:`~.target.TargetOptions`; this model adds what is process-wide: the targets file,
sharding, serving and logging.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelarts_exporter.config.addresses import ListenAddress, parse_listen_address
from modelarts_exporter.config.target import TargetOptions
from modelarts_exporter.config.target_fields import DEFAULT_PORT, ENV_PREFIX, FILE, SECRET_FIELDS

SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    extra="ignore",
    validate_default=True,
    cli_kebab_case=True,
    cli_implicit_flags=True,
    cli_exit_on_error=False,
    cli_hide_none_type=True,
    cli_avoid_json=True,
    allow_inf_nan=False,
)
"""How a settings model reads the environment and flags (also ``healthcheck``'s smaller one)."""


class Settings(BaseSettings, TargetOptions):
    """The whole configuration: process-wide settings plus the single target's options."""

    model_config = SETTINGS_CONFIG

    config_file: FILE | None = Field(
        None,
        description="YAML file of several targets (docs/config.example.yaml); the top-level "
        "target settings are then the defaults of every target. kill -HUP re-reads it.",
    )
    shard: int = Field(
        0,
        ge=0,
        description="This replica's shard, 0 … TOTAL_SHARDS-1: it polls the targets whose name "
        "hashes to it (the same hash on every replica and at every start).",
    )
    total_shards: int = Field(
        1,
        ge=1,
        le=10000,
        description="Replicas sharing the targets; together they poll every target exactly once. "
        "modelarts_exporter_shard_info says which shard a replica is.",
    )
    # Serving.
    listen_address: ListenAddress = Field(
        f"0.0.0.0:{DEFAULT_PORT}",
        description="host:port to serve /metrics, /healthz, /readyz and the status page on "
        "([::]:9878 for IPv6). Default: every IPv4 address.",
    )
    ready_intervals: float = Field(
        3.0,
        gt=0,
        description="/readyz fails when a target's last successful poll is older than this many "
        "of its poll intervals (of its last poll's duration, when polls are slower than the "
        "interval): with 3, a failed poll or two do not turn the exporter unready.",
    )
    web_config_file: FILE | None = Field(
        None,
        description="Web configuration file in the Prometheus exporter-toolkit format: TLS, "
        "client certificates and basic auth for the HTTP endpoints (docs/web-config.md). "
        "Checked at start-up; changes apply without a restart, but for switching between HTTP "
        "and HTTPS.",
    )
    # Logging.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged (in any case: info works too)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: one line per event with key=value context; json: one object per "
        "line, for log collectors.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_shard(self) -> Self:
        if self.shard >= self.total_shards:
            raise ValueError(f"SHARD must be below TOTAL_SHARDS ({self.total_shards})")
        return self

    @property
    def listen(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)

    def effective(self) -> Iterator[tuple[str, str]]:
        """Every setting with its value as text, secrets masked — for ``check-config``."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                shown = "(not set)" if value is None else "**********"
            elif value is None:
                shown = "(not set)"
            elif isinstance(value, tuple):
                shown = ",".join(value) or "(default)"
            else:
                shown = str(value)
            yield f"{ENV_PREFIX}{name.upper()}", shown
