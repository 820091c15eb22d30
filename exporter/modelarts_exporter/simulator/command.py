"""The ``simulate`` and ``demo`` commands' side of the simulator: their flags (the tenant's and
the faults to inject) and starting a simulator from them."""

from __future__ import annotations

import argparse
from typing import Literal, get_args

from modelarts_exporter.simulator.faults import FAULT_HELP, FaultKind, FaultRule
from modelarts_exporter.simulator.pool_api import RuntimeVariant
from modelarts_exporter.simulator.server import SimulatorServer
from modelarts_exporter.simulator.tenant import Tenant
from modelarts_exporter.simulator.v2_tenant import V2Tenant


def simulator_parser(prog: str, default_api: str = "v1") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"modelarts-exporter {prog}")
    parser.add_argument("--size", type=int, default=2000, help="versions in the tenant")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic tenant")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="how many times busier than a real project the tenant is: jobs are created that "
        "much more often and change status that much sooner; its clock keeps the wall clock's "
        "time, so ages are real (0: the tenant stands still)",
    )
    parser.add_argument("--offset-mode", choices=("record", "page"), default="record")
    parser.add_argument(
        "--max-limit", type=int, default=None, help="most versions a page holds (default: no cap)"
    )
    parser.add_argument("--project-id", default="demo-project")
    parser.add_argument(
        "--api-version",
        choices=("v1", "v2", "both"),
        default=default_api,
        help="v1: versions only; v2, both: v2 training-job-searches too (v1 is always served)",
    )
    return parser


def add_fault_options(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group(
        "faults",
        "API requests that fail on purpose, to watch the exporter cope. Kinds:\n"
        + "\n".join(f"  {kind:<19} {text}" for kind, text in FAULT_HELP.items()),
    )
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=[str(kind) for kind in FAULT_HELP],
        metavar="KIND",
        help="inject this fault (repeat for several; each is tried in the order given)",
    )
    faults.add_argument(
        "--fault-probability",
        type=float,
        default=0.1,
        metavar="P",
        help="share of API requests each --fault hits, 0 to 1 (default: 0.1)",
    )
    faults.add_argument(
        "--latency-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="added before every API answer (default: 0)",
    )
    pools = parser.add_argument_group("resource pools", "The pool endpoints misbehaving.")
    pools.add_argument(
        "--pools-forbidden",
        choices=("modelarts", "apig"),
        default=None,
        help="every pool endpoint answers 403: ModelArts.0203 (no modelarts:pool:* permission) "
        "or the gateway's APIG.0303",
    )
    pools.add_argument(
        "--pool-latency-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="added before every pool endpoint's answer (default: 0)",
    )
    pools.add_argument(
        "--pool-runtime-variant",
        choices=get_args(RuntimeVariant),
        default="tnt004",
        help="runtime metrics' GPU key tnt004 (default), the nodes' keys (node-keys), or tnt004 "
        "with a short name instead of the pool id (by-name)",
    )


def start_simulator(
    options: argparse.Namespace,
    host: str,
    port: int,
    token: str | None,
    clock: Literal["ticks", "listings"] = "ticks",
) -> SimulatorServer:
    # Sped up, not fast-forwarded: a clock running ahead of the wall clock would make every job
    # younger than the exporter's clock says, so ages (oldest_seconds) would read 0.
    speed = options.speed if options.speed > 0 else 1.0
    tenant = Tenant(size=options.size, seed=options.seed, speed=speed)
    v2 = None
    if options.api_version != "v1":
        v2 = V2Tenant(size=options.size, seed=options.seed, workspaces=("0",), speed=speed)
    server = SimulatorServer(
        tenant,
        project_id=options.project_id,
        host=host,
        port=port,
        offset_mode=options.offset_mode,
        max_limit=options.max_limit,
        tokens=[token] if token else None,
        realtime_speed=1.0 if options.speed > 0 else 0.0,
        v2=v2,
        clock=clock,
    )
    for kind in getattr(options, "fault", []):
        server.faults.add(FaultRule(FaultKind(kind), probability=options.fault_probability))
    server.faults.latency_seconds = getattr(options, "latency_seconds", 0.0)
    server.pools.forbidden = getattr(options, "pools_forbidden", None)
    server.pools.latency_seconds = getattr(options, "pool_latency_seconds", 0.0)
    server.pools.runtime_variant = getattr(options, "pool_runtime_variant", "tnt004")
    server.start()
    return server
