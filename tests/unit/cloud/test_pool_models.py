"""The pool APIs' answers parsed at the edge: both readings of ``status.resources.<state>``,
resource maps of any key, and one line naming the field of anything of the wrong shape."""

from __future__ import annotations

import json

import pytest

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.pool_models import (
    next_token,
    parse_flavors,
    parse_nodes,
    parse_pools,
    parse_runtime,
)

FLAVOR = "modelarts.bm.npu.arm.8snt9b3.d"


def _pool(resources: object) -> bytes:
    return json.dumps(
        {"items": [{"metadata": {"name": "npu-train-5d0c8e2a91f347b6a0c4e7d9b13f6a28"},
                    "spec": {"type": "Dedicate", "scope": ["Train"],
                             "resources": [{"flavor": FLAVOR, "count": 4}]},
                    "status": {"phase": "Running", "resources": resources}}]}
    ).encode()  # fmt: skip


@pytest.mark.parametrize(
    "resources",
    [
        {
            "available": [{"flavor": FLAVOR, "count": 3}],
            "abnormal": [{"flavor": FLAVOR, "count": 1}],
        },
        {"available": {"flavor": FLAVOR, "count": 3}, "abnormal": {"flavor": FLAVOR, "count": "1"}},
    ],
    ids=["array", "object"],
)
def test_flavor_counts_read_as_arrays_or_objects(resources: object) -> None:
    (pool,) = parse_pools(_pool(resources))["items"]
    assert pool["status"] is not None
    assert pool["status"]["resources"] == {
        "available": [{"flavor": FLAVOR, "count": 3.0}],
        "abnormal": [{"flavor": FLAVOR, "count": 1.0}],
    }


def test_missing_and_null_fields_are_none() -> None:
    (pool,) = parse_pools(b'{"items": [{"metadata": {"name": "p"}, "status": null}]}')["items"]
    assert pool["spec"] is None and pool["status"] is None
    assert pool["metadata"]["labels"] is None


def test_resource_maps_keep_every_key_numbers_and_strings_mixed() -> None:
    page = parse_nodes(
        b'{"metadata": {"continue": "tok", "remainingItemCount": 3}, "items": [{"status": {'
        b'"phase": "Available", "resources": {"cpu": "3920m", "memory": "6270Mi", '
        b'"huawei.com/ascend-1980": "8", "vendor.example/xpu": 2}, '
        b'"availableResources": {"huawei.com/ascend-1980": 2}}}]}'
    )
    (node,) = page["items"]
    assert node["status"] is not None
    assert node["status"]["resources"] == {
        "cpu": 3.92,
        "memory": 6270 * 2**20,
        "huawei.com/ascend-1980": 8.0,
        "vendor.example/xpu": 2.0,
    }
    assert next_token(page["metadata"]) == "tok"
    assert next_token(parse_nodes(b'{"items": []}')["metadata"]) == ""


def test_runtime_metrics_and_flavors() -> None:
    runtime = parse_runtime(
        b'{"items": [{"metadata": {"name": "hougang-rse-pool", "labels": {"os.modelarts/name": '
        b'"hougang"}}, "table": {"capacity": {"value": {"cpu": 5, "tnt004": 2}}, "allocated": '
        b'{"value": {"memory": "15548Mi", "tnt004": "1073m"}}}}]}'
    )
    table = runtime["items"][0]["table"]
    assert table is not None and table["allocated"] is not None
    assert table["allocated"]["value"] == {"memory": 15548 * 2**20, "tnt004": 1.073}
    flavors = parse_flavors(
        b'{"metadata": {"continue": ""}, "items": [{"metadata": {"name": "f"}, "spec": '
        b'{"npu": {"type": "ascend-snt9", "size": "8", "card": "4"}}}]}'
    )
    spec = flavors["items"][0]["spec"]
    assert spec is not None and spec["npu"] is not None and spec["npu"]["size"] == 8.0


@pytest.mark.parametrize(
    ("parse", "body", "names"),
    [
        (parse_pools, b'{"kind": "PoolList"}', "pools: unexpected response (items:"),
        (parse_pools, b'{"items": [{"metadata": {}}]}', "items.0.metadata.name"),
        (parse_pools, _pool({"available": "three"}), "items.0.status.resources.available"),
        (parse_pools, _pool([]), "items.0.status.resources"),
        (
            parse_nodes,
            b'{"items": [{"status": {"resources": {"nvidia.com/gpu": "eight"}}}]}',
            "items.0.status.resources.nvidia.com/gpu: not a quantity",
        ),
        (parse_nodes, b'{"items": [{"status": {"resources": {"cpu": -2}}}]}', "out of range"),
        (parse_runtime, b'{"items": {"a": 1}}', "runtime metrics: unexpected response (items"),
        (
            parse_flavors,
            b'{"items": [{"metadata": {"name": "f"}, "spec": {"gpu": {"size": "x"}}}]}',
            "items.0.spec.gpu.size",
        ),
        (parse_nodes, b"<html>502</html>", "nodes: response is not JSON"),
        (parse_nodes, b"", "nodes: empty response body"),
    ],
)
def test_bad_shapes_are_one_line_naming_the_field(parse: object, body: bytes, names: str) -> None:
    assert callable(parse)
    with pytest.raises(PollError) as caught:
        parse(body)
    assert caught.value.reason is Reason.INVALID_RESPONSE
    assert names in str(caught.value)
    assert "\n" not in str(caught.value)


def test_outside_text_in_an_error_is_bounded_and_printable() -> None:
    hostile = json.dumps({"items": [{"status": {"resources": {"\x1b[2J" + "k" * 5000: "x"}}}]})
    with pytest.raises(PollError) as caught:
        parse_nodes(hostile.encode())
    assert "\x1b" not in str(caught.value) and len(str(caught.value)) <= 420
