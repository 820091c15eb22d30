"""A fake ModelArts endpoint for tests, the demo and benchmarks (never imported by the exporter).

``Tenant`` is the synthetic, deterministic set of training-job versions; ``SimulatorServer`` serves
it as ``GET /v1/{project_id}/training-jobs/versions`` over real HTTP, with the gateway's token and
AK/SK checks; ``FaultPlan`` makes it misbehave on purpose (throttling, gateway pages, resets, …).
``PoolSim`` serves the project's resource pools (:mod:`.pools`, :mod:`.pool_api`).

It is a test tool: it binds to 127.0.0.1 by default and its ``/_sim/*`` control endpoints have no
authentication.
"""

from .columns import ABSENT
from .faults import FaultKind, FaultPlan, FaultRule, RequestInfo
from .iam import Iam, IamUser
from .pool_api import PoolSim
from .pools import PoolModel
from .server import ServerOptions, SimulatorServer, serve
from .stats import QueryRecord, Stats
from .tenant import Tenant
from .v2_tenant import V2Tenant

__all__ = [
    "ABSENT",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "Iam",
    "IamUser",
    "PoolModel",
    "PoolSim",
    "QueryRecord",
    "RequestInfo",
    "ServerOptions",
    "SimulatorServer",
    "Stats",
    "Tenant",
    "V2Tenant",
    "serve",
]
