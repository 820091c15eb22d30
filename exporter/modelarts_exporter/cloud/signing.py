"""SDK-HMAC-SHA256 request signing, the AK/SK scheme of the Huawei Cloud API gateway.

Pure functions over plain values, so that the client signs with them and the simulator's gateway
verifies with them. The promise: for the same request the signature equals the one the vendor's
reference signer (``huaweicloudsdkcore.signer.Signer``) computes, including its quirks: every path
ends with ``/`` in the canonical URI, query pairs are sorted by key then value, and header names
containing ``_`` are never signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def format_date(moment: datetime) -> str:
    """The ``X-Sdk-Date`` value for a moment (converted to UTC)."""
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_date(value: str) -> datetime:
    """Inverse of :func:`format_date`; raises ``ValueError`` on anything else."""
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """The path decoded once, then each segment percent-encoded, always ending in ``/`` (the
    reference signer decodes before splitting, so an encoded ``/`` separates segments too)."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded ``(key, value)`` pairs sorted by key then value *before* encoding, as the
    reference signer sorts them."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased header names to sign, sorted; names with ``_`` are skipped as the SDK does."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    header_lines = "".join(f"{name}:{lowered[name].strip()}\n" for name in signed)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_lines,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` header value for a request whose headers already carry
    ``Host`` and ``X-Sdk-Date`` (and ``X-Security-Token`` for temporary credentials)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    sdk_date = lowered[DATE_HEADER.lower()]
    signed = signed_header_names(headers)
    canonical = canonical_request(method, path, query, headers, signed, body)
    sig = signature(secret_key, string_to_sign(canonical, sdk_date))
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"


def parse_authorization(value: str) -> dict[str, str] | None:
    """Split ``SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…``; ``None`` if malformed."""
    scheme, _, rest = value.partition(" ")
    if scheme != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    if not {"Access", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def verify(
    *,
    authorization: str,
    secret_for: Mapping[str, str],
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """What a gateway does: recompute the signature over the headers the client says it signed."""
    fields = parse_authorization(authorization)
    if fields is None:
        return False
    secret = secret_for.get(fields["Access"])
    if secret is None:
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = fields["SignedHeaders"].split(";")
    if DATE_HEADER.lower() not in signed or any(name not in lowered for name in signed):
        return False
    canonical = canonical_request(method, path, query, lowered, signed, body)
    expected = signature(secret, string_to_sign(canonical, lowered[DATE_HEADER.lower()]))
    return hmac.compare_digest(expected, fields["Signature"])
