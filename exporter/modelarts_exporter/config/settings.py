"""The exporter's configuration: one pydantic-settings model, from flags, then the environment.

Every field is an environment variable ``MODELARTS_EXPORTER_<NAME>`` and a flag ``--<name>``
(kebab case); flags win. Problems are reported one line each, naming the variable, and never echo a
secret's value (:func:`describe_errors`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from modelarts_exporter.config.endpoints import PRESETS, Cloud, Endpoints, preset
from modelarts_exporter.http import webconfig
from modelarts_exporter.listing.v1 import ListingOptions, Pagination
from modelarts_exporter.listing.v2 import MAX_LIMIT, V2Options

ENV_PREFIX = "MODELARTS_EXPORTER_"
DEFAULT_PORT = 9878
SECRET_FIELDS = frozenset({"auth_token", "secret_key", "security_token", "password"})


def _flag(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()} (--{name.replace('_', '-')})"


class ConfigError(Exception):
    """Settings that cannot work; ``str()`` is one line per problem."""


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) into its parts; ``ValueError`` names the problem."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise ValueError(f"expected host:port with a host, got {value!r}")
    if ":" in host:
        ipaddress.IPv6Address(host)
    return host, int(port)


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
    api_version: Literal["v1", "v2", "both"] = Field(
        "v1",
        description="v1: job versions (GET /v1/…/training-jobs/versions); v2: jobs "
        "(POST /v2/…/training-job-searches); both: the two, published as one target.",
    )
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

    @model_validator(mode="after")
    def _check_v2(self) -> Self:
        if self.api_version == "v1":
            return self
        which = f"API_VERSION={self.api_version}"
        if "page_size" in self.model_fields_set and self.page_size > MAX_LIMIT:
            raise ValueError(
                f"PAGE_SIZE {self.page_size} is above {MAX_LIMIT}, the most jobs a v2 page "
                f"holds ({which})"
            )
        if self.poll_mode == "incremental":
            raise ValueError(f"POLL_MODE=incremental is not available with {which} yet")
        if self.pagination == "all":
            raise ValueError(f"PAGINATION=all has no v2 equivalent (no limit=0): {which}")
        if self.status is not None:
            raise ValueError(f"STATUS is a v1 status code: unset it with {which}")
        if self.sort_by != "create_time":
            raise ValueError(f"SORT_BY must be create_time with {which}")
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

    def v2_options(self) -> V2Options:
        return V2Options(
            page_size=min(self.page_size, MAX_LIMIT),
            pagination="auto" if self.pagination == "all" else self.pagination,
            max_concurrency=self.max_concurrency,
            pool_id=self.pool_id,
            workspace_ids=self.workspace_id,
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
    listen_address: str = Field(
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

    @field_validator("listen_address")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @model_validator(mode="after")
    def _check_shard(self) -> Self:
        if self.shard >= self.total_shards:
            raise ValueError(f"SHARD must be below TOTAL_SHARDS ({self.total_shards})")
        return self

    @field_validator("web_config_file")
    @classmethod
    def _check_web_config(cls, value: Path | None) -> Path | None:
        if value is not None:
            webconfig.load(value)  # a bad file stops start-up (and check-config) with one line
        return value

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


def describe_errors(error: ValidationError) -> str:
    """One line per problem, naming the environment variable, never a secret's value."""
    lines = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        message = item["msg"].removeprefix("Value error, ")
        if field and field not in SECRET_FIELDS and item["type"] != "value_error":
            message += f" (got {item['input']!r})"
        lines.append(f"{name}: {message}")
    return "\n".join(lines)


def load(args: list[str] | None = None) -> Settings:
    """Settings from the environment and, when given, command-line flags; :class:`ConfigError`
    with one line per problem otherwise."""
    return parse(Settings, args)


_Model = TypeVar("_Model", bound=BaseSettings)


def parse(
    model: type[_Model], args: list[str] | None = None, prog: str = "modelarts-exporter"
) -> _Model:
    """:func:`load` for any settings model of this module's kind (:data:`SETTINGS_CONFIG`)."""
    try:
        if args is None:
            return model()
        return model(_cli_parse_args=args, _cli_prog_name=prog)
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None
    except SettingsError as error:
        raise ConfigError(_flags_only(str(error))) from None


def _flags_only(message: str) -> str:
    """argparse quotes unrecognized arguments with their values; after a mistyped flag such as
    ``--auth-tokn`` that value is a secret. Keep the flags."""
    head, sep, rest = message.partition("unrecognized arguments: ")
    if not sep:
        return message
    flags = [word.split("=", 1)[0] for word in rest.split() if word.startswith("-")]
    return f"{head}{sep}{' '.join(flags)} (values not shown)"
