"""What one target may be told: every per-target setting declared once, with its bounds,
default and description (the descriptions are ``--help``, and ``docs/configuration.md`` is
generated from them). The checks that combine fields are :mod:`.target`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
)
from pydantic_settings import NoDecode
from typing_extensions import TypeAliasType

from modelarts_exporter.config.endpoints import Cloud
from modelarts_exporter.config.listing import Pagination

ENV_PREFIX = "MODELARTS_EXPORTER_"
DEFAULT_PORT = 9878
SECRET_FIELDS = frozenset({"auth_token", "secret_key", "security_token", "password"})

# The names --help shows as the flags' metavars (pydantic-settings shows a type alias by its
# name, a plain type as "SecretStr" or "Path"). The types are what they alias.
TOKEN = TypeAliasType("TOKEN", SecretStr)
SECRET = TypeAliasType("SECRET", SecretStr)
PASSWORD = TypeAliasType("PASSWORD", SecretStr)
FILE = TypeAliasType("FILE", Path)
_PS = " A flag is visible to every local user in ps: prefer {0}_FILE or the environment."


class TargetFields(BaseModel):
    """The per-target settings, as declared; :class:`~.target.TargetOptions` checks them
    together."""

    # NaN fails no bound (every comparison with it is false), so pydantic would name a bound
    # it does not break; refused first, the error says what is wrong: not a finite number.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
    password: PASSWORD | None = Field(
        None,
        description="Password of USERNAME (secret). The exporter asks IAM for a token, reuses it "
        "across polls and renews it before it expires." + _PS.format("PASSWORD"),
    )
    domain_name: str | None = Field(
        None,
        description="Account (domain) name of USERNAME, e.g. OTC-EU-DE-00000000001000000001.",
    )
    auth_token: TOKEN | None = Field(
        None,
        description="Static IAM token, sent as X-Auth-Token (secret). It expires after 24 h at "
        "most and is never renewed: for tests." + _PS.format("AUTH_TOKEN"),
    )
    access_key: str | None = Field(
        None,
        description="Access key id (AK) of AK/SK request signing, the recommended credentials; "
        "needs SECRET_KEY.",
    )
    secret_key: SECRET | None = Field(
        None,
        description="Secret access key (SK) that signs every request (secret)."
        + _PS.format("SECRET_KEY"),
    )
    security_token: TOKEN | None = Field(
        None,
        description="Security token of temporary AK/SK credentials (from an agency or STS), "
        "signed with every request (secret)." + _PS.format("SECURITY_TOKEN"),
    )
    # Any secret can come from a file instead, as mounted Kubernetes Secrets do.
    auth_token_file: FILE | None = Field(
        None,
        description="File holding AUTH_TOKEN (a trailing line break is dropped), read when the "
        "settings are loaded. Preferred: the secret stays out of the environment and the process "
        "list. AUTH_TOKEN wins when both are set.",
    )
    secret_key_file: FILE | None = Field(
        None,
        description="File holding SECRET_KEY (a trailing line break is dropped), read when the "
        "settings are loaded. Preferred: the secret stays out of the environment and the process "
        "list. SECRET_KEY wins when both are set.",
    )
    security_token_file: FILE | None = Field(
        None,
        description="File holding SECURITY_TOKEN (a trailing line break is dropped), read when "
        "the settings are loaded. Preferred: the secret stays out of the environment and the "
        "process list. SECURITY_TOKEN wins when both are set.",
    )
    password_file: FILE | None = Field(
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
        "runs at start-up. A poll never overlaps the previous one: one that needs longer than "
        "the interval (a big project, a throttled API) is let finish and the next starts right "
        "after it, with one warning naming the remedy. A minute suits jobs that queue and run "
        "for minutes to days; each full poll costs about versions / PAGE_SIZE requests.",
    )
    poll_timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="Deadline of one poll in seconds, its retries included; past it the poll is "
        "abandoned (no request of it goes on) and fails as timeout. It cuts off a stuck poll "
        "only, so it is not the interval: a slow poll is let finish. Default: ten poll "
        "intervals, at least 300 s.",
    )
    page_size: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Versions asked per request (v2: jobs, at most 50, which a v2 target asks "
        "unless set lower). Bigger pages cost fewer requests and less CPU per version: at 1000 "
        "a 1,000,000-version project is 1,000 requests, at 100 it is 10,000, more than a "
        "minute at 50 ms each (docs/performance.md). The API's cap is not documented: one that "
        "serves fewer per page than asked is read by the size it serves, learned again on "
        "every full listing (a warning when it changes).",
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
    ca_bundle: FILE | None = Field(
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
        "metrics with about 4 % of the requests on a big tenant (docs/performance.md). With "
        "API_VERSION=v2 too (active jobs through the search's phase filter); not yet with "
        "API_VERSION=both, nor with STATUS or PAGINATION=all. A v2 API whose count is the items "
        "on the page, or whose phase filter is not honoured, gets full listings.",
    )
    max_label_values: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="At most this many distinct values of each label that comes from the API "
        "(pool_id, flavor_code, unrecognized status codes) keep series of their own, per target: "
        "those with the most versions, ties by name. The rest are summed under `_other`, so totals "
        "stay exact, and counted in modelarts_exporter_label_values_overflow. Bounds the "
        "exposition a project with many pools or flavors makes.",
    )
    full_listing_every: int = Field(
        10,
        ge=1,
        le=100_000,
        description="In incremental mode, every Nth poll is a full listing: a safety net should "
        "the API ever break what incremental polls rely on. Incremental polls also fall back to "
        "a full listing whenever they cannot vouch for their result.",
    )
    # Resource pools (docs/metrics.md, "Resource pools").
    pools: bool = Field(
        True,
        description="Also poll the project's resource pools (GET /v2/…/pools and, per pool, its "
        "nodes; runtime metrics and the flavor catalogue as fallbacks) for the cards each "
        "Train pool has, allocates and has free, on a schedule of its own. Needs "
        "modelarts:pool:list and modelarts:pool:get: a 403 on the pool list turns it off for "
        "the target with one warning (modelarts_exporter_pool_enabled 0), job polling goes on.",
    )
    pool_interval_seconds: float | None = Field(
        None,
        ge=1,
        le=86400,
        description="Seconds from the start of one pool poll to the next. Default: "
        "POLL_INTERVAL_SECONDS, at least 60. Each pool poll costs 1 request plus one per Train "
        "pool (per 500 nodes), and at most 1 more for runtime metrics.",
    )
    pool_timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="Deadline of one pool poll in seconds, retries included; past it the pool "
        "poll fails as timeout (modelarts_exporter_pool_up 0) and the last pool snapshot stays. "
        "Default: the pool interval, at most 300 s: pool polls are small, and one that is stuck "
        "should show before the next is due.",
    )
    flavor_cache_seconds: float = Field(
        21600.0,
        ge=0,
        le=604800,
        description="How long the flavor catalogue (GET /v1/…/resourceflavors, cards per node "
        "of each node flavor) is kept before it is read again; it is read only when a pool "
        "needs it, and a stale one is used while a new one cannot be read.",
    )
    # Per-user showback (docs/metrics.md), opt-in: a user label multiplies series.
    user_metrics: bool = Field(
        False,
        description="Publish jobs, GPUs, NPUs and GPU/NPU-seconds per user (v2 "
        "metadata.user_name): the modelarts_training_job_user_* families, for showback, not "
        "billing. The v1 API names no user: its versions count as user _none (a warning says "
        "so). Off, nothing per user is kept.",
    )
    max_users: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="With USER_METRICS: at most this many users keep series of their own, per "
        "target: those with the most jobs listed, ties by name. The rest are summed under "
        "`_other`, so totals stay exact, and counted in "
        'modelarts_exporter_label_values_overflow{label="user"}.',
    )
