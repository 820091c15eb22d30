"""One HTTP call to the ModelArts API, classified and retried.

``ApiClient.get_page`` (v1) returns a parsed :class:`~modelarts_exporter.cloud.models.Page`, and
``ApiClient.post`` (v2: a JSON body, signed with it under AK/SK) what its parser makes of a 2xx
answer; both raise :class:`~modelarts_exporter.cloud.errors.PollError` with the reason category,
for v2 on any non-2xx answer (v2 has no ``is_success``). Transient reasons
(throttling, time-outs, connection faults, 5xx) are retried with exponential backoff and full
jitter, honouring ``Retry-After``; nothing else is, because a bad request or a bad credential does
not get better by asking again. Every request is bounded twice: per read by the httpx timeout and
overall by a deadline, and its body by a size cap — a gateway that streams forever cannot hold a
poll hostage.

Deadlines here and above (the poll's, the paging workers') cancel with anyio, never with asyncio:
httpcore hands a connection back to its pool in a step shielded from anyio's cancellation only, so
an asyncio cancellation landing there keeps the pool slot taken for good, and after
``MAX_CONCURRENCY`` of those every request waits for a connection in vain.

Each request borrows one of several httpx clients of one connection each rather than sharing one
client's pool: httpcore's pool checks every idle connection for readability (a ``select`` and
anyio's attribute look-ups) twice per request, which at eight connections cost a third of the
HTTP CPU of a poll in pages of 100 (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time
from typing import TypeVar
from urllib.parse import urlencode

import anyio
import httpx

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import ErrorBody, Page, parse_error_body, parse_page
from modelarts_exporter.text import one_line

log = logging.getLogger(__name__)

# Error codes that mean "slow down", whatever HTTP status carries them (notes §3).
THROTTLE_CODES = frozenset(
    {"APIG.0308", "APIGW.0308", "ModelArts.2799", "ModelArts.6101", "ModelArts.5039"}
)
# Error codes that mean the credentials are wrong, expired or not allowed here.
AUTH_CODES = frozenset(
    {
        "APIG.0301",
        "APIG.0303",
        "APIGW.0301",
        "APIGW.0303",
        "ModelArts.0201",
        "ModelArts.0202",
        "ModelArts.0203",
        "ModelArts.0205",
        "ModelArts.0206",
        "ModelArts.0108",
        "ModelArts.0210",
        "ModelArts.2784",
        "ModelArts.2785",
        "ModelArts.2786",
        "ModelArts.4127",
    }
)
MAX_CLOCK_SKEW_SECONDS = 300.0
NO_RESPONSE = "none"
"""The ``code`` label of a request that got no HTTP answer (reset, time-out)."""
T = TypeVar("T")
JSON_BODY = {"Content-Type": "application/json;charset=UTF-8"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in ``[0, min(max, base·2^attempt)]`` so retries spread out."""
        return rng() * min(self.max_delay, self.base_delay * 2.0**attempt)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": a digit to isdigit(), not to float()
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time() if now is None else now))


def classify(
    status: int,
    body: bytes,
    content_type: str,
    parse_envelope: Callable[[bytes], ErrorBody | None] = parse_error_body,
) -> PollError:
    """The error for a non-2xx answer, from its error code first and its status second."""
    envelope = parse_envelope(body)
    code = envelope.error_code if envelope else None
    if envelope is not None:
        shown = one_line(code, 64) if code else "no error code"
        detail = f"{shown}: {one_line(envelope.message or 'no message')}"
    elif body.strip():
        detail = f"{one_line(content_type or 'unknown content type', 60)} body"
    else:
        detail = "empty body"
    message = f"HTTP {status} ({detail})"
    if status == 429 or code in THROTTLE_CODES:
        return PollError(Reason.THROTTLED, message)
    if status in (401, 403) or code in AUTH_CODES:
        return PollError(Reason.AUTH, message)
    if status >= 500:
        return PollError(Reason.SERVER_ERROR, message)
    return PollError(Reason.CLIENT_ERROR, message)


def _reclassify_api_error(error: PollError, page_code: str | None) -> PollError:
    """A 200 with ``is_success: false`` can still be throttling or an auth failure."""
    if page_code in THROTTLE_CODES:
        return PollError(Reason.THROTTLED, str(error.args[0]))
    if page_code in AUTH_CODES:
        return PollError(Reason.AUTH, str(error.args[0]))
    return error


class ApiClient:
    """GET pages from one ModelArts endpoint; knows nothing of paging or of the metrics.

    ``http``: the clients requests borrow, one request at a time each (as many as may run at once;
    same base URL, auth and settings)."""

    def __init__(
        self,
        http: Sequence[httpx.AsyncClient],
        *,
        retry: RetryPolicy,
        request_deadline: float,
        max_response_bytes: int,
        on_response: Callable[[str], None] = lambda code: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not http:
            raise ValueError("at least one HTTP client is needed")
        self._clients = tuple(http)
        self._idle = list(http)
        """Free clients; the most recently used (its connection the likeliest open) on top."""
        self._free = anyio.Semaphore(len(http))
        self._retry = retry
        self._deadline = request_deadline
        self._max_bytes = max_response_bytes
        self._on_response = on_response
        self._sleep = sleep
        self._clock_warned = False
        self._base = str(http[0].base_url).rstrip("/")

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def get_page(self, path: str, params: Mapping[str, str]) -> Page:
        return await self._retrying(lambda: self._get_once(path, params))

    async def post(
        self,
        path: str,
        body: bytes,
        parse: Callable[[bytes], T],
        parse_envelope: Callable[[bytes], ErrorBody | None],
    ) -> T:
        """POST a JSON ``body``; its 2xx answer through ``parse``, any other as a
        :class:`PollError` read with ``parse_envelope`` (an API without ``is_success``)."""

        async def once() -> T:
            status, headers, answer = await self._exchange("POST", path, {}, body)
            if not 200 <= status < 300:
                failure = classify(status, answer, headers.get("content-type", ""), parse_envelope)
                failure.retry_after = parse_retry_after(headers.get("retry-after"))
                raise failure
            return parse(answer)

        return await self._retrying(once)

    async def get(
        self,
        path: str,
        params: Mapping[str, str],
        parse: Callable[[bytes], T],
        parse_envelope: Callable[[bytes], ErrorBody | None],
    ) -> T:
        """GET what ``parse`` makes of a 2xx answer; any other as for :meth:`post` (the v2
        resource APIs: no ``is_success``, errors as ``error_code``/``error_msg``)."""

        async def once() -> T:
            status, headers, answer = await self._exchange("GET", path, params, b"")
            if not 200 <= status < 300:
                failure = classify(status, answer, headers.get("content-type", ""), parse_envelope)
                failure.retry_after = parse_retry_after(headers.get("retry-after"))
                envelope = parse_envelope(answer)
                failure.status = status
                failure.code = envelope.error_code if envelope is not None else None
                raise failure
            return parse(answer)

        return await self._retrying(once)

    async def _retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await once()
            except PollError as error:
                if not error.reason.transient or attempt >= self._retry.max_retries:
                    raise
                delay = error.retry_after
                if delay is not None and delay > self._retry.max_delay:
                    # Waiting less than asked would only be throttled again, waiting as long
                    # would end the poll as a time-out: it is throttling, reported as such.
                    raise PollError(
                        error.reason,
                        f"{error.args[0]}; asked to retry after {delay:.0f} s, more than the "
                        f"{self._retry.max_delay:g} s a poll waits",
                    ) from None
                if delay is None:
                    delay = self._retry.backoff(attempt)
                await self._sleep(delay)
                attempt += 1

    async def _get_once(self, path: str, params: Mapping[str, str]) -> Page:
        status, headers, body = await self._exchange("GET", path, params, b"")
        if not 200 <= status < 300:
            failure = classify(status, body, headers.get("content-type", ""))
            failure.retry_after = parse_retry_after(headers.get("retry-after"))
            raise failure
        try:
            return parse_page(body)
        except PollError as error:
            if error.reason is not Reason.API_ERROR:
                raise
            envelope = parse_error_body(body)
            raise _reclassify_api_error(error, envelope.error_code if envelope else None) from None

    async def _exchange(
        self, method: str, path: str, params: Mapping[str, str], content: bytes
    ) -> tuple[int, httpx.Headers, bytes]:
        """One request and its whole answer, counted; transport failures as :class:`PollError`."""
        try:
            with anyio.fail_after(self._deadline):
                status, headers, body = await self._fetch(method, path, params, content)
        except (TimeoutError, httpx.TimeoutException):
            self._on_response(NO_RESPONSE)
            raise PollError(
                Reason.TIMEOUT, f"no complete answer within the time-out ({method} {path})"
            ) from None
        except httpx.DecodingError as error:
            self._on_response(NO_RESPONSE)
            raise PollError(Reason.INVALID_RESPONSE, f"undecodable body: {error}") from None
        except httpx.RequestError as error:
            self._on_response(NO_RESPONSE)
            kind = type(error).__name__
            raise PollError(
                Reason.CONNECTION, f"{kind}: {one_line(str(error)) or 'connection failed'}"
            ) from None
        self._on_response(str(status))
        self._check_clock(headers.get("date"))
        return status, headers, body

    def _check_clock(self, date: str | None) -> None:
        """Warn (once until it is fixed) when the API's clock and ours disagree: signed AK/SK
        requests are rejected by the gateway beyond 15 minutes of skew."""
        if not date:
            return
        try:
            skew = time() - parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        skewed = abs(skew) > MAX_CLOCK_SKEW_SECONDS
        if skewed and not self._clock_warned:
            log.warning(
                "local clock is %s the API's by %.0f s; signed requests fail beyond 900 s",
                "ahead of" if skew > 0 else "behind",
                abs(skew),
            )
        self._clock_warned = skewed

    async def _fetch(
        self, method: str, path: str, params: Mapping[str, str], content: bytes
    ) -> tuple[int, httpx.Headers, bytes]:
        # One absolute URL, parsed once: given a relative path and params, httpx parses and merges
        # URLs three times per request (a measurable share of a poll's CPU).
        url = httpx.URL(f"{self._base}{path}?{urlencode(params)}" if params else self._base + path)
        async with self._free:
            http = self._idle.pop()
            try:
                return await self._read(http, method, url, path, content)
            finally:
                self._idle.append(http)

    async def _read(
        self, http: httpx.AsyncClient, method: str, url: httpx.URL, path: str, content: bytes
    ) -> tuple[int, httpx.Headers, bytes]:
        if method == "GET":
            stream = http.stream("GET", url)
        else:
            stream = http.stream(method, url, content=content, headers=JSON_BODY)
        async with stream as response:
            declared = response.headers.get("content-length", "")
            too_large = declared.isdigit() and int(declared) > self._max_bytes
            chunks: list[bytes] = []
            size = 0
            if not too_large:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        too_large = True
                        break
                    chunks.append(chunk)
            if too_large:
                self._on_response(str(response.status_code))
                raise PollError(
                    Reason.INVALID_RESPONSE,
                    f"response larger than the {self._max_bytes}-byte cap ({method} {path})",
                )
            return response.status_code, response.headers, b"".join(chunks)
