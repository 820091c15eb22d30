"""Waiting for a condition instead of for a time: a busy machine makes everything slower, so a
test waits until what it checks has happened. The time-outs only end a wait that would otherwise
never end; they are generous on purpose, and no test asserts how long something took."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable

import httpx


def wait_for(
    url: str, status: int, timeout: float = 20, verify: ssl.SSLContext | bool = True
) -> bool:
    """Whether ``url`` answered ``status`` within ``timeout`` (asked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == status:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def eventually(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Whether ``condition()`` came true within ``timeout`` (asked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def eventually_async(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 30
) -> bool:
    """:func:`eventually` on the event loop, which goes on running while it waits;
    ``condition`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
