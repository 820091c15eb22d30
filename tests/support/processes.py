"""The command, as a user runs it: ``modelarts-exporter`` in a subprocess, to completion or in
the background, with every word it writes checked for test secrets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from support.secrets import TOKEN, note_output


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``modelarts-exporter ARGS`` to completion; its output is checked for test secrets."""
    result = subprocess.run(
        [sys.executable, "-m", "modelarts_exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    note_output(result.stdout, f"stdout of {args[0] if args else 'serve'}")
    note_output(result.stderr, f"stderr of {args[0] if args else 'serve'}")
    return result


class _Recorded:
    """A text stream that remembers what was read from it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.seen: list[str] = []

    def read(self, size: int = -1) -> str:
        text = self._stream.read(size)
        self.seen.append(text)
        return text

    def readline(self) -> str:
        line = self._stream.readline()
        self.seen.append(line)
        return line

    def close(self) -> None:
        self._stream.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago (the OS picked it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sim_env(url: str, project_id: str) -> dict[str, str]:
    """The environment that points ``modelarts-exporter`` at a simulator, with the test token."""
    return {
        "MODELARTS_EXPORTER_ENDPOINT": url,
        "MODELARTS_EXPORTER_PROJECT_ID": project_id,
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
    }


@contextmanager
def background(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``modelarts-exporter ARGS`` running while the block runs (killed after it); what it
    wrote to stderr, read by the test or not, is checked for test secrets."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modelarts_exporter", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = _Recorded(process.stderr) if process.stderr else None
    process.stderr = stderr  # type: ignore[assignment]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if stderr is not None:
            stderr.read()
            note_output("".join(stderr.seen), f"stderr of {args[0]}")
            stderr.close()
