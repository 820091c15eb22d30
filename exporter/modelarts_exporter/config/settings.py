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
from modelarts_exporter.config.listing import MAX_LIMIT, ListingOptions, Pagination, V2Options

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
    cloud: Cloud | None = Field(
        None,
        description="Cloud of the endpoints: otc (Open Telekom Cloud) or huaweicloud. With REGION "
        "it sets the ModelArts and IAM endpoints from the exporter's table of regions; ENDPOINT "
        "and IAM_ENDPOINT, when set, win.",
    )
    region: str | None = Field(
        None,
        description="Region of CLOUD, e.g. eu-de or ap-southeast-3; CLOUD and REGION go together. "
        "A region missing from the table is an error listing the known ones, unless ENDPOINT and "
        "IAM_ENDPOINT are both set.",
    )
    endpoint: str | None = Field(
        None,
        description="ModelArts API endpoint, e.g. https://modelarts.eu-de.otc.t-systems.com; "
        "default: the one of CLOUD and REGION. Set it for a region missing from the table, or a "
        "proxy. No credentials in the URL.",
    )
    iam_endpoint: str | None = Field(
        None,
        description="IAM endpoint of password logins, e.g. https://iam.eu-de.otc.t-systems.com/v3; "
        "default: the one of CLOUD and REGION.",
    )
    project_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Project whose training-job versions are listed: its id, as in the console. "
        "Required, except with a password login, where PROJECT_NAME can stand in. Every series "
        "of the project carries it as the project_id label.",
    )
    project_name: str | None = Field(
        None,
        description="Instead of PROJECT_ID with a password login: the project's name (e.g. "
        "eu-de_ml), which scopes the IAM token; IAM tells the id.",
    )
    # Credentials: an IAM user's password, a token, or an AK/SK pair (temporary ones with a
    # security token).
    username: str | None = Field(
        None, description="IAM user of a password login; needs PASSWORD and DOMAIN_NAME."
    )
    password: SecretStr | None = Field(
        None,
        description="Password of USERNAME (secret; prefer PASSWORD_FILE). The exporter asks IAM "
        "for a token, reuses it across polls and renews it before it expires.",
    )
    domain_name: str | None = Field(
        None,
        description="Account (domain) name of USERNAME, e.g. OTC-EU-DE-00000000001000000001.",
    )
    auth_token: SecretStr | None = Field(
        None,
        description="Static IAM token, sent as X-Auth-Token (secret; prefer AUTH_TOKEN_FILE). "
        "It expires after 24 h at most and is never renewed: for tests.",
    )
    access_key: str | None = Field(
        None,
        description="Access key id (AK) of AK/SK request signing, the recommended credentials; "
        "needs SECRET_KEY.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Secret access key (SK) that signs every request (secret; prefer "
        "SECRET_KEY_FILE).",
    )
    security_token: SecretStr | None = Field(
        None,
        description="Security token of temporary AK/SK credentials (from an agency or STS), "
        "signed with every request (secret; prefer SECURITY_TOKEN_FILE).",
    )
    # Any secret can come from a file instead, as mounted Kubernetes Secrets do.
    auth_token_file: Path | None = Field(
        None,
        description="File holding AUTH_TOKEN (a trailing line break is dropped), read when the "
        "settings are loaded. Preferred: the secret stays out of the environment and the process "
        "list. AUTH_TOKEN wins when both are set.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="File holding SECRET_KEY (a trailing line break is dropped), read when the "
        "settings are loaded. Preferred: the secret stays out of the environment and the process "
        "list. SECRET_KEY wins when both are set.",
    )
    security_token_file: Path | None = Field(
        None,
        description="File holding SECURITY_TOKEN (a trailing line break is dropped), read when "
        "the settings are loaded. Preferred: the secret stays out of the environment and the "
        "process list. SECURITY_TOKEN wins when both are set.",
    )
    password_file: Path | None = Field(
        None,
        description="File holding PASSWORD (a trailing line break is dropped), read when the "
        "settings are loaded. Preferred: the secret stays out of the environment and the process "
        "list. PASSWORD wins when both are set.",
    )
    api_version: Literal["v1", "v2", "both"] = Field(
        "v1",
        description="v1: job versions (GET /v1/…/training-jobs/versions); v2: jobs "
        "(POST /v2/…/training-job-searches); both: the two, published as one target.",
    )
    # Polling.
    poll_interval_seconds: float = Field(
        60.0,
        ge=0.05,
        le=86400,
        description="Seconds from the start of one poll of the target to the next; the first "
        "runs at start-up. A poll never overlaps the previous one: a poll due while one runs is "
        "skipped. A minute suits jobs that queue and run for minutes to days; each full poll "
        "costs about versions / PAGE_SIZE requests.",
    )
    poll_timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="Deadline of one poll in seconds, its retries included; past it the poll is "
        "abandoned (no request of it goes on) and fails as timeout. Default: the poll interval, "
        "so a poll ends before the next one is due.",
    )
    page_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="Versions asked per request. Bigger pages cost fewer requests and less CPU "
        "per version: for big tenants use 1000 (docs/performance.md). An API that serves fewer "
        "per page than asked is read by the size it serves (one warning says so).",
    )
    max_concurrency: int = Field(
        8,
        ge=1,
        le=64,
        description="Requests in flight at once: pages after the first are fetched by this many "
        "workers, each with a kept-alive connection of its own (so also the number of "
        "connections). With 8, a 100,000-version listing takes about an eighth of the time of "
        "reading it page by page (docs/performance.md).",
    )
    pagination: Pagination = Field(
        "auto",
        description="What the API's offset parameter means, which it does not document: offset "
        "(a record offset), page (a page index), all (one limit=0 request for every version), or "
        "auto: find out with one probe request (offset=1) and remember; a probe that cannot tell "
        "(the listing moved meanwhile) makes that poll read everything with one limit=0 request.",
    )
    request_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds to wait for connecting and for each read; a whole request is cut "
        "off at three times this, however slowly its bytes trickle in. A time-out is retried as "
        "other transient failures are (MAX_RETRIES).",
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries of a request failing transiently (throttled, time-out, connection, "
        "5xx), within the poll's deadline: exponential backoff with full jitter from 0.5 s up to "
        "30 s, or the API's Retry-After (up to 30 s). Other failures are not retried.",
    )
    max_response_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest response body accepted, in bytes (default 64 MiB). A larger one, "
        "declared or streamed without end, fails the poll as invalid_response instead of filling "
        "the memory.",
    )
    verify_tls: bool = Field(
        True,
        description="Check the API's TLS certificate. --no-verify-tls (or false) turns it off, "
        "with a warning: the API's identity is then not checked.",
    )
    ca_bundle: Path | None = Field(
        None,
        description="PEM file of the CAs to trust for the API instead of the system's (a private "
        "CA, a TLS-inspecting proxy). It must exist.",
    )
    # Filters of the listing.
    status: int | None = Field(
        None,
        ge=0,
        le=255,
        description="Only list versions with this status code (the API's filter). Not with "
        "POLL_MODE=incremental.",
    )
    pool_id: str | None = Field(None, description="Only list versions in this resource pool.")
    workspace_id: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Workspaces to list, comma-separated (a list in a targets file); each is "
        "listed on its own and the results merged. Default: the API's default workspace, 0.",
    )
    sort_by: Literal["create_time", "job_desc", "status", "duration", "job_name"] = Field(
        "create_time",
        description="Field the listing is sorted by. Ascending creation time (the default, with "
        "ORDER=asc) keeps already-read records in place when jobs are created during a poll.",
    )
    order: Literal["asc", "desc"] = Field(
        "asc", description="Order of the listing; asc for the reason given at SORT_BY."
    )
    # Incremental polling (docs/performance.md).
    poll_mode: Literal["full", "incremental"] = Field(
        "full",
        description="full lists every version each poll; incremental reads only what can have "
        "changed (new versions, active ones, where ended ones went) and publishes the same "
        "metrics with about 4 % of the requests on a big tenant (docs/performance.md). Not with "
        "STATUS or PAGINATION=all.",
    )
    full_listing_every: int = Field(
        10,
        ge=1,
        le=100_000,
        description="In incremental mode, every Nth poll is a full listing: a safety net should "
        "the API ever break what incremental polls rely on. Incremental polls also fall back to "
        "a full listing whenever they cannot vouch for their result.",
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

    @field_validator(*sorted(SECRET_FIELDS))
    @classmethod
    def _strip_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # A Secret made from a file ends in a line break, which no header may carry: an HTTP
        # library would refuse it and quote it, escaped, in its error.
        if value is None:
            return None
        stripped = value.get_secret_value().strip()
        if not stripped:
            raise ValueError("is empty (or only whitespace)")
        return SecretStr(stripped)

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
        description="Stable id of the target, unique in the file: it names the target in logs "
        "(target=...) and on the status page, and its hash picks the shard that polls it. "
        "Default: its project_id, else its project_name.",
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
        "of its poll intervals: with 3, a failed poll or two do not turn the exporter unready.",
    )
    web_config_file: Path | None = Field(
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
