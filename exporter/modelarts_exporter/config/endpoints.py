"""Cloud and region presets: ``cloud`` + ``region`` give the ModelArts and IAM endpoints.

From the notes on public documentation (``docs`` of both clouds): Open Telekom Cloud lists
ModelArts in ``eu-de`` only; Huawei Cloud follows ``modelarts.{region}.myhuaweicloud.com`` with
one exception (``ap-southeast-1`` lives under ``.cn``). Explicit ``ENDPOINT``/``IAM_ENDPOINT``
always win, which is also the way to reach a region missing from these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cloud = Literal["otc", "huaweicloud"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    modelarts: str
    iam: str


_OTC: dict[str, Endpoints] = {
    "eu-de": Endpoints(
        "https://modelarts.eu-de.otc.t-systems.com", "https://iam.eu-de.otc.t-systems.com/v3"
    ),
}

_HUAWEICLOUD_REGIONS = (
    "af-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "cn-east-3",
    "cn-north-4",
    "cn-north-9",
    "cn-south-1",
    "cn-southwest-2",
    "la-north-2",
    "la-south-2",
    "me-east-1",
    "sa-brazil-1",
    "tr-west-1",
)


def _huaweicloud(region: str) -> Endpoints:
    domain = "myhuaweicloud.cn" if region == "ap-southeast-1" else "myhuaweicloud.com"
    return Endpoints(
        f"https://modelarts.{region}.{domain}", f"https://iam.{region}.myhuaweicloud.com/v3"
    )


PRESETS: dict[Cloud, dict[str, Endpoints]] = {
    "otc": _OTC,
    "huaweicloud": {region: _huaweicloud(region) for region in _HUAWEICLOUD_REGIONS},
}


def preset(cloud: Cloud, region: str) -> Endpoints:
    """The endpoints of a known region; ``ValueError`` listing the known ones otherwise."""
    regions = PRESETS[cloud]
    if region not in regions:
        known = ", ".join(sorted(regions))
        raise ValueError(
            f"unknown {cloud} region {region!r} (known: {known}); "
            "set ENDPOINT and IAM_ENDPOINT explicitly for other regions"
        )
    return regions[region]
