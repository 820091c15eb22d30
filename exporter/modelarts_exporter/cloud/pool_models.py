"""Typed records of the resource-pool APIs, parsed once at the edge (pools notes §2).

Four answers: the pool list (``GET /v2/{project_id}/pools``), a pool's nodes
(``GET /v2/{project_id}/pools/{pool_name}/nodes``, paged by ``continue``), the runtime metrics of
every pool (``GET /v2/{project_id}/metrics/runtime/pools``) and the flavor catalogue
(``GET /v1/{project_id}/resourceflavors``, paged by ``continue``).

What the notes leave open is accepted either way: ``status.resources.<state>`` as an array of
flavor counts (OTC) or one object (the SDK); resource maps as ``map<str, quantity>`` with any
key (numbers and quantity strings mixed, :mod:`.quantity`), never a fixed set of fields. Any
field may be missing or null. Anything of the wrong shape makes the answer an
``invalid_response`` whose one-line message names the field. Strings and maps are bounded.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, PlainValidator, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.quantity import quantity
from modelarts_exporter.cloud.v2_models import Number
from modelarts_exporter.text import dotted, one_line, validation_lines

T = TypeVar("T")
MAX_ENTRIES = 256
"""Most keys a resource or label map, most states a pool's status, may have."""
MAX_ITEMS = 100_000

_Str = Annotated[str | None, Field(max_length=256, default=None)]
_Key = Annotated[str, Field(min_length=1, max_length=128)]
Quantity = Annotated[float, PlainValidator(quantity)]
Resources = Annotated[dict[_Key, Quantity] | None, Field(max_length=MAX_ENTRIES, default=None)]
"""A resource map (``cpu``, ``memory``, ``nvidia.com/gpu``, ``tnt004`` …) of amounts."""
Labels = Annotated[
    dict[_Key, Annotated[str, Field(max_length=1024)]] | None,
    Field(max_length=MAX_ENTRIES, default=None),
]


def _as_list(value: object) -> object:
    """One flavor count (the SDK's reading) as a list of one (OTC's)."""
    return [value] if isinstance(value, dict) else value


class FlavorCount(TypedDict):
    """Nodes of one flavor in one state (``status.resources.<state>[]``) or desired
    (``spec.resources[]``)."""

    flavor: _Str
    count: Number


_Counts = Annotated[
    list[FlavorCount] | None, BeforeValidator(_as_list), Field(max_length=MAX_ENTRIES)
]


class PoolMetadata(TypedDict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    """The pool id: ``{pool_name}`` in the paths and the training jobs' ``pool_id``."""
    labels: Labels


class PoolSpec(TypedDict):
    type: _Str
    scope: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Field(default=None)]
    resources: Annotated[list[FlavorCount] | None, Field(default=None, max_length=MAX_ENTRIES)]


class ScopeState(TypedDict):
    scopeType: _Str
    state: _Str


class PoolStatus(TypedDict):
    phase: _Str
    scope: Annotated[list[ScopeState] | None, Field(default=None, max_length=MAX_ENTRIES)]
    resources: Annotated[dict[_Key, _Counts] | None, Field(default=None, max_length=MAX_ENTRIES)]
    parent: _Str


class Pool(TypedDict):
    metadata: PoolMetadata
    spec: Annotated[PoolSpec | None, Field(default=None)]
    status: Annotated[PoolStatus | None, Field(default=None)]


class ListMetadata(TypedDict):
    continue_: Annotated[str | None, Field(alias="continue", max_length=4096, default=None)]


class PoolList(TypedDict):
    items: Annotated[list[Pool], Field(max_length=MAX_ITEMS)]


class NodeMetadata(TypedDict):
    name: _Str
    labels: Labels


class NodeSpec(TypedDict):
    flavor: _Str


class NodeStatus(TypedDict):
    phase: _Str
    resources: Resources
    availableResources: Resources


class Node(TypedDict):
    metadata: Annotated[NodeMetadata | None, Field(default=None)]
    spec: Annotated[NodeSpec | None, Field(default=None)]
    status: Annotated[NodeStatus | None, Field(default=None)]


class NodeList(TypedDict):
    metadata: Annotated[ListMetadata | None, Field(default=None)]
    items: Annotated[list[Node], Field(max_length=MAX_ITEMS)]


class Measured(TypedDict):
    value: Resources


class MetricsTable(TypedDict):
    capacity: Annotated[Measured | None, Field(default=None)]
    allocated: Annotated[Measured | None, Field(default=None)]


class MetricsMetadata(TypedDict):
    name: _Str
    labels: Labels


class PoolMetrics(TypedDict):
    metadata: Annotated[MetricsMetadata | None, Field(default=None)]
    table: Annotated[MetricsTable | None, Field(default=None)]


class RuntimeMetrics(TypedDict):
    items: Annotated[list[PoolMetrics], Field(max_length=MAX_ITEMS)]


class Xpu(TypedDict):
    size: Number
    """Cards per node (OTC: the number of XPUs)."""


class FlavorSpec(TypedDict):
    gpu: Annotated[Xpu | None, Field(default=None)]
    npu: Annotated[Xpu | None, Field(default=None)]


class FlavorMetadata(TypedDict):
    name: Annotated[str, Field(min_length=1, max_length=256)]


class ResourceFlavor(TypedDict):
    metadata: FlavorMetadata
    spec: Annotated[FlavorSpec | None, Field(default=None)]


class FlavorList(TypedDict):
    metadata: Annotated[ListMetadata | None, Field(default=None)]
    items: Annotated[list[ResourceFlavor], Field(max_length=MAX_ITEMS)]


def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


_POOLS: TypeAdapter[PoolList] = _adapter(PoolList)
_NODES: TypeAdapter[NodeList] = _adapter(NodeList)
_RUNTIME: TypeAdapter[RuntimeMetrics] = _adapter(RuntimeMetrics)
_FLAVORS: TypeAdapter[FlavorList] = _adapter(FlavorList)


def _parse(adapter: TypeAdapter[T], body: bytes, what: str) -> T:
    if not body.strip():
        raise PollError(Reason.INVALID_RESPONSE, f"{what}: empty response body")
    try:
        return adapter.validate_json(body)
    except ValidationError as error:
        first = validation_lines(error, lambda location: dotted(location) or "body")[0]
        if error.errors(include_url=False)[0]["type"] == "json_invalid":
            raise PollError(
                Reason.INVALID_RESPONSE, f"{what}: response is not JSON ({one_line(first, 160)})"
            ) from None
        raise PollError(
            Reason.INVALID_RESPONSE, f"{what}: unexpected response ({one_line(first, 160)})"
        ) from None


def parse_pools(body: bytes) -> PoolList:
    return _parse(_POOLS, body, "pools")


def parse_nodes(body: bytes) -> NodeList:
    return _parse(_NODES, body, "nodes")


def parse_runtime(body: bytes) -> RuntimeMetrics:
    return _parse(_RUNTIME, body, "runtime metrics")


def parse_flavors(body: bytes) -> FlavorList:
    return _parse(_FLAVORS, body, "resource flavors")


def next_token(metadata: ListMetadata | None) -> str:
    """The ``continue`` token of the next page; empty on the last page."""
    return (metadata["continue_"] if metadata is not None else None) or ""
