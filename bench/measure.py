"""One measured task in its own process; prints a JSON line with seconds and peak RSS.

Run by bench/run.py so that every figure is a separate process and peak memory
(ru_maxrss of this process alone) is not polluted by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_floor(root: Path) -> dict[str, Any]:
    """The floor: read every JSON file and orjson.loads it, nothing else."""
    files = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".json"):
                continue
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(data)
            files += 1
    return {"files": files}


def duckdb_copy(root: Path, out: Path) -> dict[str, Any]:
    """DuckDB's cheapest path: every file as a raw JSON object, written as day-partitioned Parquet."""
    import duckdb

    with duckdb.connect() as connection:
        connection.execute("SET threads TO 2")
        connection.execute(
            f"""
            COPY (
                SELECT json, filename,
                       coalesce(nullif(regexp_extract(filename, '/(\\d{{8}})/', 1), ''), 'none') AS day
                FROM read_json_objects('{root}/**/*.json', filename = true, ignore_errors = true,
                                       maximum_object_size = 268435456)
            ) TO '{out}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, OVERWRITE_OR_IGNORE)
            """
        )
        files = connection.execute(f"SELECT count(*) FROM glob('{root}/**/*.json')").fetchone()
    return {"files": int(files[0]) if files else 0}


def archiver_compact(source: str, dest: str) -> dict[str, Any]:
    """The archiver itself, through the same function the CLI calls."""
    from archiver.cli import compact
    from archiver.config import settings_from_env

    report = asyncio.run(compact(source, dest, settings_from_env()))
    return {"report": report.as_dict()}


def bare_get_loop(endpoint: str, bucket: str, concurrency: int) -> dict[str, Any]:
    """The S3 floor: list the bucket and GET every object with aioboto3, nothing else."""
    from archiver.moto_server import moto_session

    async def run() -> int:
        session = moto_session()
        from botocore.config import Config

        config = Config(max_pool_connections=concurrency)
        async with session.client("s3", endpoint_url=endpoint, config=config) as client:
            keys: list[str] = []
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket):
                keys.extend(item["Key"] for item in page.get("Contents", ()))
            gate = asyncio.Semaphore(concurrency)

            async def fetch(key: str) -> None:
                async with gate:
                    response = await client.get_object(Bucket=bucket, Key=key)
                    await response["Body"].read()

            await asyncio.gather(*(fetch(key) for key in keys))
            return len(keys)

    return {"objects": asyncio.run(run())}


def main() -> None:
    task, *args = sys.argv[1:]
    started = time.perf_counter()
    if task == "floor":
        result = parse_floor(Path(args[0]))
    elif task == "duckdb":
        result = duckdb_copy(Path(args[0]), Path(args[1]))
    elif task == "archiver":
        result = archiver_compact(args[0], args[1])
    elif task == "bare-get":
        result = bare_get_loop(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown task {task}")
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = _peak_rss_mb()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
