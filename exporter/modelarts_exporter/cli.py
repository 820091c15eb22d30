"""The ``modelarts-exporter`` command.

``serve`` (default), ``once`` and ``check-config`` take the exporter's settings as flags or
environment variables; ``healthcheck`` only the two that say how to reach a serving exporter;
``simulate`` and ``demo`` run the built-in ModelArts simulator. Every failure the user can cause
ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import logging
import os
import secrets
import sys
from collections.abc import Sequence

from prometheus_client import generate_latest
from pydantic import SecretStr

from modelarts_exporter import __version__, logs
from modelarts_exporter.config.addresses import parse_listen_address
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load, parse, unknown_variables
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetSettings
from modelarts_exporter.config.targets import empty_shard, every_target, of_shard, resolve
from modelarts_exporter.runtime.wiring import build_registry, build_target, open_web_config
from modelarts_exporter.snapshot.store import StateStore

log = logging.getLogger("modelarts_exporter")

# The serving side (the scheduler, the HTTP server, the status page) and the health check are
# imported by the commands that use them: ``once`` imports only what a poll needs, a measurable
# share of its CPU (docs/performance.md, row 2d).

COMMANDS = ("serve", "once", "check-config", "healthcheck", "simulate", "demo")
USAGE = f"""usage: modelarts-exporter [COMMAND] [--flags]

commands:
  serve         run the exporter (default)
  once          poll once, print the exposition to stdout, exit 0 on success
  check-config  validate the settings and print them with secrets masked
  healthcheck   exit 0 when the exporter serving here answers (the image's HEALTHCHECK)
  simulate      run the built-in ModelArts API simulator
  demo          run the simulator and the exporter against it

'modelarts-exporter COMMAND --help' lists a command's flags; every exporter flag is also an
environment variable MODELARTS_EXPORTER_<NAME>.  Version {__version__}.
"""


def _settings(args: list[str]) -> tuple[Settings, list[TargetSettings]]:
    settings = load(args)
    logs.configure(settings.log_level, settings.log_format)
    logs.redact(*settings.secrets())
    for line in unknown_variables(os.environ):
        log.warning("%s", line)
    targets = resolve(settings)
    for target in targets:
        logs.redact(*target.secrets())
    return settings, targets


def freeze_startup_objects(*, collect: bool = True) -> None:
    """Take what exists now (modules, classes, functions: objects that live as long as the
    process) out of the garbage collector's sight, so that the collections a poll's allocations
    trigger stop traversing them again and again (docs/performance.md has the gain). Called once
    by ``serve`` and ``once``, before any target exists, so that nothing that can later become
    garbage is frozen. ``collect``: first free the garbage of the start-up (a full collection,
    ~20 ms), worth it for a process that lives on, not for ``once``."""
    if collect:
        gc.collect()
    gc.freeze()


def _serve(args: list[str]) -> int:
    from modelarts_exporter.runtime.service import POLL_NICENESS, Service  # noqa: PLC0415

    settings, _ = _settings(args)
    freeze_startup_objects()
    exporter = Service(settings, niceness=POLL_NICENESS)
    return asyncio.run(exporter.run())


async def _once_async(targets: list[TargetSettings]) -> tuple[list[str], bytes]:
    """Poll every target once, concurrently (its pools too, when POOLS); the failures (one
    line each) and the exposition. A failed pool poll is a warning on stderr, not a failure:
    the jobs are what ``once`` checks, and pool polling may lack its permission."""
    store = StateStore()
    built = [build_target(target, store) for target in targets]
    polls = [target.poller.poll() for target in built]
    polls += [target.pools.poll() for target in built if target.pools is not None]
    try:
        await asyncio.gather(*polls)
    finally:
        for target in built:
            await target.aclose()
    failures = [
        f"{t.poller.target}: {t.poller.state.last_error_reason}: {t.poller.state.last_error}"
        for t in built
        if not t.poller.state.up
    ]
    for t in built if not failures else ():  # a failed job poll is all a failure says
        if t.pools is not None and not t.pools.state.up:
            cause = logs.scrub(t.pools.state.last_error or "pool polling is off")
            print(
                f"modelarts-exporter: warning: pool poll of {t.poller.target}: {cause}",
                file=sys.stderr,
            )
    return failures, generate_latest(build_registry(store))


def _once(args: list[str]) -> int:
    _, targets = _settings(args)
    logging.getLogger().setLevel(max(logging.ERROR, logging.getLogger().level))
    freeze_startup_objects(collect=False)
    failures, exposition = asyncio.run(_once_async(targets))
    for failure in failures:
        print(f"modelarts-exporter: poll failed: {logs.scrub(failure)}", file=sys.stderr)
    if failures:
        return 1
    sys.stdout.buffer.write(exposition)
    return 0


def _check_config(args: list[str]) -> int:
    settings = load(args)
    for line in unknown_variables(os.environ):
        print(f"modelarts-exporter: warning: {line}", file=sys.stderr)
    every = every_target(settings)
    targets = of_shard(every, settings)
    open_web_config(settings)
    width = max(len(name) for name, _ in settings.effective())
    for name, value in settings.effective():
        print(f"{name:<{width}}  {value}")
    print(f"\ntargets polled by shard {settings.shard} of {settings.total_shards}:")
    for target in targets:
        print(f"  {target.name}: {describe_target(target)}")
        for warning in target.warnings():
            print(f"modelarts-exporter: warning: {target.name}: {warning}", file=sys.stderr)
    if not targets:
        print("  (none)")
        print(f"modelarts-exporter: warning: {empty_shard(settings, len(every))}", file=sys.stderr)
    print("configuration is valid", file=sys.stderr)
    return 0


def _healthcheck(args: list[str]) -> int:
    from modelarts_exporter.http.healthcheck import (  # noqa: PLC0415
        HealthcheckSettings,
        UnhealthyError,
        check,
    )

    try:
        settings = parse(HealthcheckSettings, args, prog="modelarts-exporter healthcheck")
        answer = check(settings)
    except (ConfigError, UnhealthyError) as error:
        # Exit 1 even for a configuration error: Docker reserves 2. One line: Docker keeps the
        # check's output for `docker inspect`.
        reason = "; ".join(str(error).splitlines())
        print(f"modelarts-exporter: unhealthy: {reason}", file=sys.stderr)
        return 1
    print(answer)
    return 0


def describe_target(target: TargetSettings) -> str:
    """Where, which project and as whom (the kind of credentials, never their values)."""
    if target.auth_token is not None:
        who = "static token"
    elif target.access_key:
        kind = "temporary AK/SK" if target.security_token is not None else "AK/SK"
        who = f"{kind} {target.access_key}"
    elif target.password is not None:
        who = f"IAM user {target.domain_name}/{target.username} via {target.iam_url}"
    else:
        who = "no credentials"
    project = target.project_id or f"project named {target.project_name}"
    return (
        f"{target.modelarts_url} project {project}, {who}, every {target.poll_interval_seconds:g} s"
        f", API {target.api_version}"
    )


def _simulate(args: list[str]) -> int:
    # Imported here: the exporter proper never depends on the simulator.
    from modelarts_exporter.simulator.command import (  # noqa: PLC0415
        add_fault_options,
        simulator_parser,
        start_simulator,
    )

    parser = simulator_parser("simulate")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--listen-address", default="127.0.0.1:9879")
    parser.add_argument("--token", default=None, help="require this X-Auth-Token")
    add_fault_options(parser)
    options = parser.parse_args(args)
    if not 0 <= options.fault_probability <= 1:
        parser.error(f"--fault-probability: {options.fault_probability} is not between 0 and 1")
    if not 0 <= options.latency_seconds <= 3600:
        parser.error(f"--latency-seconds: {options.latency_seconds} is not between 0 and 3600")
    if not 0 <= options.pool_latency_seconds <= 3600:
        parser.error(f"--pool-latency-seconds: {options.pool_latency_seconds} is not 0 to 3600")
    logs.configure()
    try:
        host, port = parse_listen_address(options.listen_address)
    except ValueError as error:
        parser.error(f"--listen-address: {error}")
    try:
        server = start_simulator(options, host, port, options.token)
    except OSError as error:  # the address in use, or a host that does not resolve
        from modelarts_exporter.http.server import ListenError  # noqa: PLC0415

        raise ListenError.of(host, port, error) from None
    log.info(
        "simulator listening url=%s project_id=%s api=%s",
        server.url,
        options.project_id,
        options.api_version,
    )
    try:
        asyncio.run(_wait_for_signal())
    finally:
        server.stop()
    return 0


async def _wait_for_signal() -> None:
    import signal  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _demo(args: list[str]) -> int:
    from modelarts_exporter.runtime.service import Service  # noqa: PLC0415
    from modelarts_exporter.simulator.command import simulator_parser, start_simulator  # noqa: PLC0415

    parser = simulator_parser("demo", default_api="both")
    parser.add_argument("--listen-address", default="127.0.0.1:9878")
    parser.add_argument("--poll-interval-seconds", type=float, default=5.0)
    options = parser.parse_args(args)
    token = secrets.token_urlsafe(24)
    logs.configure()
    logs.redact(token)
    # Sped up, a tenant changing all the time would move under nearly every listing: it catches
    # up with the clock when a listing starts, and holds still while the exporter reads it.
    simulator = start_simulator(options, "127.0.0.1", 0, token, clock="listings")
    try:
        settings = Settings(
            endpoint=simulator.url,
            project_id=options.project_id,
            auth_token=SecretStr(token),
            listen_address=options.listen_address,
            poll_interval_seconds=options.poll_interval_seconds,
            api_version=options.api_version,
            pool_interval_seconds=max(1.0, options.poll_interval_seconds),
        )
        log.info(
            "demo: exporter on http://%s/metrics polling the simulator at %s "
            "(API %s, %d versions or jobs, %gx speed); Ctrl-C stops",
            options.listen_address,
            simulator.url,
            options.api_version,
            options.size,
            options.speed,
        )
        status = asyncio.run(Service(settings).run())
    finally:
        simulator.stop()
    return status


def _unknown_command(word: str) -> str:
    """The first argument is neither a command nor a flag. It is named only when it is close
    to a command (a typo): anything else may be a secret given without its flag."""
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command {word!r}: did you mean {close[0]!r}?"
    return f"unknown command (not shown); the commands are {', '.join(COMMANDS)}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = "serve"
    if args and args[0] in COMMANDS:
        command = args.pop(0)
    elif args and args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    elif args and args[0] in ("-V", "--version", "version"):
        print(__version__)
        return 0
    elif args and not args[0].startswith("-"):
        print(f"modelarts-exporter: {_unknown_command(args[0])}", file=sys.stderr)
        return 2
    handlers = {
        "serve": _serve,
        "once": _once,
        "check-config": _check_config,
        "healthcheck": _healthcheck,
        "simulate": _simulate,
        "demo": _demo,
    }
    try:
        return handlers[command](args)
    except ConfigError as error:
        for line in str(error).splitlines():
            print(f"modelarts-exporter: configuration error: {line}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"modelarts-exporter: {logs.scrub(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
