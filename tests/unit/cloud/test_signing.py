"""AK/SK signing against the vendor's published test vectors and its own verification."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from modelarts_exporter.cloud import signing
from modelarts_exporter.cloud.auth import AkSkAuth, StaticTokenAuth

VECTOR_HEADERS = {"Host": "service.endpoint.myhuaweicloud.com", "X-Sdk-Date": "20200608T023900Z"}


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", b"", "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
        (
            "POST",
            b'{"name":"test","id":1}',
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
        ),
    ],
)
def test_published_test_vectors(method: str, body: bytes, expected: str) -> None:
    header = signing.sign(
        access_key="AccessKey",
        secret_key="SecretKey",
        method=method,
        path="/resources",
        query=[("size", "1")],
        headers=VECTOR_HEADERS,
        body=body,
    )
    assert header == (
        f"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature={expected}"
    )


def test_canonical_uri_always_ends_with_slash_and_encodes_segments() -> None:
    assert signing.canonical_uri("/v1/p/training-jobs/versions") == "/v1/p/training-jobs/versions/"
    # Decoded before it is split, as the reference signer does: an encoded slash separates.
    assert signing.canonical_uri("/a b/c%2Fd") == "/a%20b/c/d/"


def test_canonical_query_sorts_by_key_then_value_and_keeps_repeats() -> None:
    assert signing.canonical_query([("b", "2"), ("a", "z"), ("a", "y"), ("c", "")]) == (
        "a=y&a=z&b=2&c="
    )
    # Sorted before encoding: "é" sorts after "~" although "%C3%A9" would sort before it.
    assert signing.canonical_query([("é", "1"), ("~", "2")]) == "~=2&%C3%A9=1"


def test_header_names_with_underscore_are_not_signed() -> None:
    assert signing.signed_header_names({"Host": "h", "X_Custom": "v", "X-Sdk-Date": "d"}) == [
        "host",
        "x-sdk-date",
    ]


def _signed(auth: AkSkAuth, url: str) -> httpx.Request:
    request = httpx.Request("GET", url)
    flow = auth.sync_auth_flow(request)
    return next(flow)


def test_aksk_auth_signs_what_the_gateway_verifies() -> None:
    moment = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
    auth = AkSkAuth("AK1", SecretStr("SK1"), clock=lambda: moment)
    request = _signed(
        auth, "https://modelarts.example/v1/p/training-jobs/versions?limit=5&offset=0"
    )
    assert request.headers["X-Sdk-Date"] == "20261127T050000Z"

    def verify(secret: str) -> bool:
        return signing.verify(
            authorization=request.headers["Authorization"],
            secret_for={"AK1": secret},
            method="GET",
            path=request.url.path,
            query=[("offset", "0"), ("limit", "5")],
            headers=dict(request.headers),
            body=b"",
        )

    assert verify("SK1")
    assert not verify("SK2")


def test_temporary_credentials_sign_the_security_token() -> None:
    auth = AkSkAuth("AK1", SecretStr("SK1"), SecretStr("tok-123"))
    request = _signed(auth, "https://h/v1/p/training-jobs/versions")
    assert request.headers["X-Security-Token"] == "tok-123"
    assert "x-security-token" in request.headers["Authorization"]


def test_auth_reprs_hide_secrets() -> None:
    assert "SK-secret" not in repr(AkSkAuth("AK1", SecretStr("SK-secret"), SecretStr("st-xyz")))
    assert "st-xyz" not in repr(AkSkAuth("AK1", SecretStr("SK-secret"), SecretStr("st-xyz")))
    assert "tok-secret" not in repr(StaticTokenAuth(SecretStr("tok-secret")))
