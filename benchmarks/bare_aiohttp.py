"""The best bare Python client, as a process of its own: ``python -m benchmarks.bare_aiohttp
URL PROJECT PAGES SIZE CONCURRENCY [v2]`` fetches the pages of a v1 listing (with ``v2``: POSTs
for the pages of the v2 search) with aiohttp and ``json.loads`` each body. What ``once`` is
compared with in rows 2d-2f: a client that does nothing but fetch and decode, so whatever the
exporter costs above it is its own."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def fetch(url: str, project: str, pages: int, size: int, concurrency: int, v2: bool) -> int:
    path = f"{url}/v1/{project}/training-jobs/versions"
    search = f"{url}/v2/{project}/training-job-searches"
    cursor = 0
    versions = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal cursor, versions
            while cursor < pages:
                index = cursor
                cursor += 1
                if v2:
                    body = {"offset": index * size, "limit": size, "sort_by": "create_time"}
                    request = http.post(search, json={**body, "order": "asc"})
                else:
                    params = {"offset": str(index * size), "limit": str(size), "order": "asc"}
                    request = http.get(path, params=params)
                async with request as response:
                    response.raise_for_status()
                    page = json.loads(await response.read())
                    versions += len(page["items" if v2 else "versions"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return versions


def main() -> None:
    url, project, pages, size, concurrency = sys.argv[1:6]
    v2 = sys.argv[6:] == ["v2"]
    print(asyncio.run(fetch(url, project, int(pages), int(size), int(concurrency), v2)))


if __name__ == "__main__":
    main()
