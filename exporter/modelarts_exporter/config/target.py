"""One target's options checked as a whole: credentials that go together, a region that
exists, what incremental polls and v2 can do; and what the rest of the exporter reads of them
(endpoint URLs, the listing options, the secrets to mask).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from modelarts_exporter.config.endpoints import PRESETS, Endpoints, preset
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.listing import MAX_LIMIT, ListingOptions, V2Options
from modelarts_exporter.config.target_fields import ENV_PREFIX, SECRET_FIELDS, TargetFields

POLL_TIMEOUT_INTERVALS = 10
MIN_POLL_TIMEOUT_SECONDS = 300.0
"""The default poll deadline: ten intervals, at least five minutes. Every request is already
bounded (time-outs, retries within the deadline), so what this catches is a poll that keeps
going without end, never a slow one: those are let finish, however far past the interval."""


MIN_POOL_INTERVAL_SECONDS = 60.0
MAX_POOL_TIMEOUT_SECONDS = 300.0
"""The default pool deadline is the pool interval, at most this: a pool poll is a handful of
small requests, so one that takes longer is stuck, and should show before the next is due."""


def _flag(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()} (--{name.replace('_', '-')})"


def _check_port(netloc: str) -> None:
    """urlsplit reads a port only when asked, so a URL with port 99999 or 0 or ``x`` would pass
    here and fail at the first request as a connection error."""
    host_end = netloc.rfind("]")  # an IPv6 address has colons of its own
    _, sep, port = netloc[host_end + 1 :].rpartition(":")
    if not sep or port == "":
        return
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a port number (1-65535)")


class TargetOptions(TargetFields):
    """Everything about *one* project to poll: where, as whom, how and what.

    In the single-target form these are top-level settings (``MODELARTS_EXPORTER_ENDPOINT`` …);
    a multi-target config file gives each target its own set.
    """

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
        if self.poll_mode == "incremental" and self.api_version == "both":
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
        _check_port(parts.netloc.rpartition("@")[2])
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
        return self.poll_timeout_seconds or max(
            POLL_TIMEOUT_INTERVALS * self.poll_interval_seconds, MIN_POLL_TIMEOUT_SECONDS
        )

    # Resource pools.
    @property
    def pool_interval(self) -> float:
        return self.pool_interval_seconds or max(
            MIN_POOL_INTERVAL_SECONDS, self.poll_interval_seconds
        )

    @property
    def pool_timeout(self) -> float:
        return self.pool_timeout_seconds or min(self.pool_interval, MAX_POOL_TIMEOUT_SECONDS)

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

    def warnings(self) -> list[str]:
        """What is valid but likely not meant, one line each (``check-config`` and ``serve``
        say it)."""
        if self.user_metrics and self.api_version == "v1":
            return [
                "USER_METRICS with API_VERSION=v1: the v1 API names no user, every version "
                "counts as user _none"
            ]
        return []

    def require_target(self) -> None:
        """What polling needs beyond what validation checks (``simulate`` needs none of it)."""
        missing = []
        if self.modelarts_url is None:
            missing.append(f"{_flag('endpoint')} is required (or CLOUD and REGION)")
        if self.project_id is None and not (self.project_name and self.uses_password):
            missing.append(
                f"{_flag('project_id')} is required (or PROJECT_NAME with a password login)"
            )
        if self.auth_token is None and not self.access_key and not self.uses_password:
            # Every ModelArts API call needs one of them: without, each poll would fail as auth.
            missing.append(
                "no credentials: set ACCESS_KEY+SECRET_KEY, USERNAME+PASSWORD+DOMAIN_NAME or "
                "AUTH_TOKEN (secrets also as *_FILE), or HUAWEICLOUD_SDK_AK/SK, OS_* or OS_CLOUD"
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
