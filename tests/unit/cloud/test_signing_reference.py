"""Our signer against the vendor's reference signer (``huaweicloudsdkcore``, a test-only
dependency): byte-for-byte the same ``Authorization`` for generated requests — paths with special
characters, repeated and empty query parameters, unicode, headers and bodies."""

from __future__ import annotations

from dataclasses import dataclass

from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud import signing
from support.properties import examples


@dataclass
class _Credentials:
    ak: str
    sk: str


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
segment = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/?#%"
    ),
    min_size=1,
    max_size=10,
)
header_name = st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True).filter(
    lambda name: name.lower() not in {"x-sdk-date", "x-security-token"}
)
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
# Each header name once, whatever its case: HTTP names are case-insensitive and the exporter
# never sends one twice; given two, the reference signer lists the name twice and ours once.
extra_headers = st.lists(
    st.tuples(header_name, header_value), max_size=3, unique_by=lambda pair: pair[0].lower()
).map(dict)


@settings(max_examples=examples(1200), deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    segments=st.lists(segment, min_size=1, max_size=5),
    trailing_slash=st.booleans(),
    query=st.lists(st.tuples(text, text), max_size=6),
    repeat=st.booleans(),
    headers=extra_headers,
    body=st.one_of(st.just(b""), st.binary(max_size=64), text.map(str.encode)),
    ak=st.from_regex(r"[A-Z0-9]{8,20}", fullmatch=True),
    sk=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=40
    ),
    security_token=st.none() | st.from_regex(r"[A-Za-z0-9+/=]{16,64}", fullmatch=True),
)
def test_signature_equals_the_reference_signer(
    method: str,
    segments: list[str],
    trailing_slash: bool,
    query: list[tuple[str, str]],
    repeat: bool,
    headers: dict[str, str],
    body: bytes,
    ak: str,
    sk: str,
    security_token: str | None,
) -> None:
    if repeat and query:
        query = [*query, (query[0][0], query[0][1] + "x"), query[0]]  # repeated keys and pairs
    path = "/" + "/".join(segments) + ("/" if trailing_slash else "")
    all_headers = {
        "Host": "modelarts.eu-de.otc.t-systems.com",
        "X-Sdk-Date": "20261127T050000Z",
        "Content-Type": "application/json",
        **headers,
    }
    if security_token is not None:
        all_headers["X-Security-Token"] = security_token

    reference = SdkRequest(
        method=method,
        schema="https",
        host=all_headers["Host"],
        resource_path=path,
        query_params=list(query),
        header_params=dict(all_headers),
        body=body,
    )
    expected = Signer(_Credentials(ak, sk)).sign(reference).header_params["Authorization"]

    ours = signing.sign(
        access_key=ak,
        secret_key=sk,
        method=method,
        path=path,
        query=query,
        headers=all_headers,
        body=body,
    )
    assert ours == expected
