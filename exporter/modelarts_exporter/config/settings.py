"""The exporter's configuration: one pydantic-settings model, from flags, then the environment.

Every field is an environment variable ``MODELARTS_EXPORTER_<NAME>`` and a flag ``--<name>``
(kebab case); flags win. Problems are reported one line each, naming the variable, and never echo a
secret's value (:func:`describe_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelarts_exporter.config.addresses import ListenAddress, parse_listen_address
from modelarts_exporter.config.endpoints import PRESETS, Cloud, Endpoints, preset
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.listing import ListingOptions, Pagination

ENV_PREFIX = "MODELARTS_EXPORTER_"
DEFAULT_PORT = 9878
SECRET_FIELDS = frozenset({"auth_token", "secret_key", "security_token", "password"})


def _flag(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()} (--{name.replace('_', '-')})"


class TargetOptions(BaseModel):
    """Everything about *one* project to poll: where, as whom, how and what.

    In the single-target form these are top-level settings (``MODELARTS_EXPORTER_ENDPOINT`` …);
    a multi-target config file gives each target its own set.
    """

    model_config = ConfigDict(extra="forbid")

    # Where and what to poll.
    cloud: Cloud | None = Field(None, description="otc or huaweicloud: endpoints from REGION.")
    region: str | None = Field(None, description="Region of the cloud, e.g. eu-de.")
    endpoint: str | None = Field(
        None, description="ModelArts endpoint, e.g. https://modelarts.eu-de.otc.t-systems.com"
    )
    iam_endpoint: str | None = Field(
        None,
        description="IAM endpoint for password logins, e.g. https://iam.eu-de.otc.t-systems.com/v3",
    )
    project_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Project whose training jobs are listed (its id, as in the console).",
    )
    project_name: str | None = Field(
        None, description="Project name (e.g. eu-de): the IAM token's scope when no id is given."
    )
    # Credentials: an IAM user's password, a token, or an AK/SK pair (temporary ones with a
    # security token).
    username: str | None = Field(None, description="IAM user name for password logins.")
    password: SecretStr | None = Field(None, description="IAM user password.")
    domain_name: str | None = Field(None, description="Account (domain) name of the IAM user.")
    auth_token: SecretStr | None = Field(None, description="Static IAM token (X-Auth-Token).")
    access_key: str | None = Field(None, description="Access key id for AK/SK signing.")
    secret_key: SecretStr | None = Field(None, description="Secret access key.")
    security_token: SecretStr | None = Field(
        None, description="Security token of temporary AK/SK credentials."
    )
    # Any secret can come from a file instead, as mounted Kubernetes Secrets do.
    auth_token_file: Path | None = None
    secret_key_file: Path | None = None
    security_token_file: Path | None = None
    password_file: Path | None = None
    # Polling.
    poll_interval_seconds: float = Field(60.0, ge=0.05, le=86400)
    poll_timeout_seconds: float | None = Field(
        None, gt=0, description="Deadline of one poll; default: the poll interval."
    )
    page_size: int = Field(100, ge=1, le=1000)
    max_concurrency: int = Field(8, ge=1, le=64)
    pagination: Pagination = "auto"
    request_timeout_seconds: float = Field(10.0, gt=0, le=600)
    max_retries: int = Field(3, ge=0, le=10)
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    # Filters of the listing.
    status: int | None = Field(None, ge=0, le=255, description="Only versions with this status.")
    pool_id: str | None = Field(None, description="Only versions in this resource pool.")
    workspace_id: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Workspaces to list, comma-separated (default: the API's default, 0)."
    )
    sort_by: Literal["create_time", "job_desc", "status", "duration", "job_name"] = "create_time"
    order: Literal["asc", "desc"] = "asc"
    # Incremental polling (docs/performance.md).
    poll_mode: Literal["full", "incremental"] = Field(
        "full", description="full: list every version each poll; incremental: only what changed."
    )
    full_listing_every: int = Field(
        10, ge=1, le=100_000, description="In incremental mode, every Nth poll lists in full."
    )

    @model_validator(mode="after")
    def _check_incremental(self) -> Self:
        if self.poll_mode == "incremental" and self.status is not None:
            raise ValueError("POLL_MODE=incremental lists by status itself: unset STATUS")
        if self.poll_mode == "incremental" and self.pagination == "all":
            raise ValueError("POLL_MODE=incremental reads single pages: PAGINATION=all cannot")
        return self

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        for name in sorted(SECRET_FIELDS):
            path = data.get(f"{name}_file")
            if path is None or data.get(name) is not None:
                continue
            try:
                data = {**data, name: Path(path).read_text().rstrip("\r\n")}
            except OSError as error:
                raise ValueError(
                    f"{name.upper()}_FILE: cannot read {path} ({error.strerror})"
                ) from None
        return data

    @field_validator("workspace_id", mode="before")
    @classmethod
    def _split_workspaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple):  # YAML reads workspace 0 as a number
            return tuple(str(part) for part in value)
        return value

    @field_validator("endpoint", "iam_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            # Not echoed: the URL holds a password. It would show in check-config and logs.
            raise ValueError("credentials in the URL are not supported; use AUTH_TOKEN or keys")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as https://host, got {value!r}")
        return value.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> Self:
        kinds = [
            name
            for name, given in (
                ("AUTH_TOKEN", self.auth_token is not None),
                ("ACCESS_KEY/SECRET_KEY", bool(self.access_key or self.secret_key)),
                ("USERNAME/PASSWORD", bool(self.username or self.password)),
            )
            if given
        ]
        if len(kinds) > 1:
            raise ValueError(f"give one kind of credentials, not {' and '.join(kinds)}")
        if bool(self.access_key) != (self.secret_key is not None):
            raise ValueError("ACCESS_KEY and SECRET_KEY go together")
        if self.security_token is not None and not self.access_key:
            raise ValueError("SECURITY_TOKEN needs ACCESS_KEY and SECRET_KEY")
        if (self.username or self.password) and not (
            self.username and self.password and self.domain_name
        ):
            raise ValueError("a password login needs USERNAME, PASSWORD and DOMAIN_NAME")
        return self

    @model_validator(mode="after")
    def _check_region(self) -> Self:
        if (self.cloud is None) != (self.region is None):
            raise ValueError("CLOUD and REGION go together")
        if self.cloud is not None and self.region is not None:
            regions = PRESETS[self.cloud]
            # A region outside the table is fine when both endpoints are explicit.
            if self.region not in regions and not (self.endpoint and self.iam_endpoint):
                preset(self.cloud, self.region)  # raises, listing the known regions
        return self

    def _preset(self) -> Endpoints | None:
        if self.cloud is None or self.region is None:
            return None
        return PRESETS[self.cloud].get(self.region)

    @property
    def modelarts_url(self) -> str | None:
        """The explicit endpoint, else the region's."""
        found = self._preset()
        return self.endpoint or (found.modelarts if found else None)

    @property
    def iam_url(self) -> str | None:
        found = self._preset()
        return self.iam_endpoint or (found.iam if found else None)

    @property
    def uses_password(self) -> bool:
        return self.password is not None

    def secrets(self) -> list[str]:
        """Every secret value configured here, for log redaction."""
        values = [self.auth_token, self.secret_key, self.security_token, self.password]
        return [secret.get_secret_value() for secret in values if secret is not None]

    @property
    def poll_timeout(self) -> float:
        return self.poll_timeout_seconds or self.poll_interval_seconds

    def listing_options(self) -> ListingOptions:
        return ListingOptions(
            page_size=self.page_size,
            pagination=self.pagination,
            max_concurrency=self.max_concurrency,
            status=self.status,
            pool_id=self.pool_id,
            workspace_ids=self.workspace_id,
            sort_by=self.sort_by,
            order=self.order,
        )

    def require_target(self) -> None:
        """What polling needs beyond what validation checks (``simulate`` needs none of it)."""
        missing = []
        if self.modelarts_url is None:
            missing.append(f"{_flag('endpoint')} is required (or CLOUD and REGION)")
        if self.project_id is None and not (self.project_name and self.uses_password):
            missing.append(
                f"{_flag('project_id')} is required (or PROJECT_NAME with a password login)"
            )
        if self.uses_password and self.iam_url is None:
            missing.append(f"{_flag('iam_endpoint')} is required (or CLOUD and REGION)")
        if missing:
            raise ConfigError("; ".join(missing))


class TargetSettings(TargetOptions):
    """One configured target, complete."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
        description="Stable id of the target (defaults to its project id or name).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("name"):
            fallback = data.get("project_id") or data.get("project_name")
            if fallback:
                return {**data, "name": str(fallback)}
        return data


SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    extra="ignore",
    validate_default=True,
    cli_kebab_case=True,
    cli_implicit_flags=True,
    cli_exit_on_error=False,
    cli_hide_none_type=True,
    cli_avoid_json=True,
)
"""How a settings model reads the environment and flags (also ``healthcheck``'s smaller one)."""


class Settings(BaseSettings, TargetOptions):
    """The whole configuration: process-wide settings plus the single target's options."""

    model_config = SETTINGS_CONFIG

    config_file: Path | None = Field(
        None, description="YAML file listing several targets (see docs/config.example.yaml)."
    )
    shard: int = Field(0, ge=0, description="This replica's shard, 0 … TOTAL_SHARDS-1.")
    total_shards: int = Field(1, ge=1, le=10000, description="Replicas sharing the targets.")
    # Serving.
    listen_address: ListenAddress = Field(
        f"0.0.0.0:{DEFAULT_PORT}",
        description="host:port to serve /metrics on.",
    )
    ready_intervals: float = Field(
        3.0, gt=0, description="/readyz fails when the last success is this many intervals old."
    )
    web_config_file: Path | None = Field(
        None,
        description="Web configuration file (Prometheus exporter-toolkit format): TLS and basic "
        "auth for the HTTP endpoints.",
    )
    # Logging.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

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
