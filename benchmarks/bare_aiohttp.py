"""The best bare Python client, as a process of its own: ``python -m benchmarks.bare_aiohttp
URL PROJECT PAGES SIZE CONCURRENCY`` fetches the pages of a v1 listing with aiohttp and
``json.loads`` each body. What ``once`` is compared with in rows 2d/2e: a client that does
nothing but fetch and decode, so whatever the exporter costs above it is its own."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def fetch(url: str, project: str, pages: int, size: int, concurrency: int) -> int:
    path = f"{url}/v1/{project}/training-jobs/versions"
    cursor = 0
    versions = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal cursor, versions
            while cursor < pages:
                index = cursor
                cursor += 1
                params = {"offset": str(index * size), "limit": str(size), "order": "asc"}
                async with http.get(path, params=params) as response:
                    response.raise_for_status()
                    versions += len(json.loads(await response.read())["versions"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return versions


def main() -> None:
    url, project, pages, size, concurrency = sys.argv[1:6]
    print(asyncio.run(fetch(url, project, int(pages), int(size), int(concurrency))))


if __name__ == "__main__":
    main()
