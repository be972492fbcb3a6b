"""One measured task in its own process; prints one JSON line with seconds and peak RSS.

Run by bench/run.py so that every figure is a separate process and peak memory
(ru_maxrss of this process alone) is not polluted by the others.

    python bench/measure.py floor ROOT
    python bench/measure.py duckdb ROOT OUT [FILE_LIST]    # read_json_objects (+ COPY ... PARTITION_BY)
    python bench/measure.py duckdb-text ROOT OUT           # read_text + json_valid (+ COPY ...)
    python bench/measure.py archiver SOURCE DEST           # the CLI compact, settings from ARCHIVER_*
    python bench/measure.py archiver-memprofile SOURCE DEST  # the same under tracemalloc, peak by function
    python bench/measure.py plan SOURCE DEST               # the units `archiver plan SOURCE DEST` prints
    python bench/measure.py archiver-sqs SOURCE BATCH SEED # sqs_handler's batches over every source object
    python bench/measure.py bare-get ENDPOINT BUCKET CONCURRENCY

The last line of stdout is the JSON result; anything else goes to stderr. Profile
the archiver with `python -m cProfile -o OUT.prof bench/measure.py archiver SRC DEST`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

COPY_OPTIONS = "FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, OVERWRITE_OR_IGNORE"
DAY_EXPRESSION = "coalesce(nullif(regexp_extract(filename, '/(\\d{8})/', 1), ''), 'none')"


def _peak_rss_mb() -> float:
    """This process's peak resident set, MB.

    VmHWM where there is /proc: Linux's ru_maxrss keeps the high-water mark of the memory
    image replaced by exec, and subprocess spawns with vfork, so a child's ru_maxrss would
    start at its parent's peak (a 300 MB parent gives every child >= 300 MB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _descendants_cpu_seconds() -> float | None:
    """CPU seconds of this process's descendants: live ones, the children they reaped, and ours.

    The parse workers are children of the run's process or of its shard processes, so
    RUSAGE_CHILDREN misses those still alive and every grandchild; a live worker's time
    is in its own stat, a reaped one's in its parent's cutime/cstime. Linux only.
    """
    try:
        table = _process_table()
    except OSError:
        return None
    ticks = sum(
        sum(int(value) for value in table[pid][1][11:15])  # utime stime cutime cstime
        for pid in _descendants(table, os.getpid())
        if pid in table
    )
    # Children this process has reaped already (the shard processes of a run on every core).
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ticks / os.sysconf("SC_CLK_TCK") + reaped.ru_utime + reaped.ru_stime


def _process_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, the stat fields after the command name), for every process we may read."""
    table: dict[int, tuple[int, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields)
    return table


def _tree_table(root: int) -> dict[int, tuple[int, list[str]]]:
    """`_process_table` of `root` and its descendants alone, found through /proc/PID/task/TID/children.

    Reading every process's stat ten times a second cost the sampled process about 4% of a core
    on a machine running ninety processes (and the floor it is compared with runs no sampler);
    this reads the tree's own entries only. Falls back to the whole table without those files.
    """
    if not os.path.exists(f"/proc/{root}/task/{root}/children"):
        table = _process_table()
        return {pid: table[pid] for pid in [root, *_descendants(table, root)] if pid in table}
    table: dict[int, tuple[int, list[str]]] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        table[pid] = (int(fields[1]), fields)
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                    frontier.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return table


def _descendants(table: dict[int, tuple[int, list[str]]], root: int) -> list[int]:
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


class TreeSampler:
    """Samples the memory of this process and its descendants (shard and parse workers) while a task runs.

    The archiver runs its work in worker processes (one shard of the days each, or a parse
    pool), so this process's own VmHWM says little. Sampled every `interval` seconds:
    - `process_peak_mb`: the largest VmHWM of any one process of the tree (the high-water
      mark is kept by the kernel, so only a worker's last 0.1 s before exit can be missed);
    - `tree_peak_pss_mb`: the tree's summed PSS (shared pages counted once, as a Lambda's
      memory limit counts them), a lower bound between samples;
    - `tree_peak_rss_mb`: the summed RSS (shared libraries counted in every process).
    Always on for archiver tasks; for the others with BENCH_SAMPLE_TREE=1.
    """

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.peak_mb = 0.0
        self.pss_peak_mb = 0.0
        self.process_peak_mb = 0.0
        self.workers_peak_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            try:
                table = _tree_table(me)
            except OSError:
                continue
            others = [pid for pid in table if pid != me]
            rss = {pid: int(table[pid][1][21]) * self._page_mb for pid in [me, *others]}  # field 24: rss
            self.peak_mb = max(self.peak_mb, sum(rss.values()))
            self.workers_peak_mb = max(self.workers_peak_mb, sum(rss[pid] for pid in others))
            self.pss_peak_mb = max(
                self.pss_peak_mb, sum(_status_mb(pid, "smaps_rollup", "Pss:") for pid in rss)
            )
            for pid in rss:
                self.process_peak_mb = max(self.process_peak_mb, _status_mb(pid, "status", "VmHWM:"))
            self.samples += 1

    def as_dict(self) -> dict[str, float]:
        return {
            "tree_peak_rss_mb": self.peak_mb,
            "tree_peak_pss_mb": self.pss_peak_mb,
            "process_peak_mb": self.process_peak_mb,
            "descendants_peak_rss_mb": self.workers_peak_mb,
            "tree_samples": self.samples,
        }


def _status_mb(pid: int, name: str, field: str) -> float:
    """One `field:  N kB` line of /proc/PID/NAME, in MB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/{name}", encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def duckdb_copy(root: Path, out: Path, file_list: Path | None = None) -> dict[str, Any]:
    """DuckDB's cheapest documented path: every file as a raw JSON object, written as day-partitioned Parquet.

    read_json_objects cannot skip a malformed file unless the input is newline-delimited,
    so `file_list` (one path a line) can name the files that parse; by default every
    `*.json` under `root`.
    """
    import duckdb

    if file_list is not None:
        paths = file_list.read_text(encoding="utf-8").splitlines()
        source = "[" + ", ".join(_sql_text(path) for path in paths) + "]"
    else:
        source = _sql_text(f"{root}/**/*.json")
    with duckdb.connect() as connection:
        connection.execute("SET threads TO 2")
        connection.execute(
            f"""
            COPY (
                SELECT json, filename, {DAY_EXPRESSION} AS day
                FROM read_json_objects({source}, filename = true, maximum_object_size = 268435456)
            ) TO {_sql_text(str(out))} ({COPY_OPTIONS})
            """
        )
        files = len(paths) if file_list is not None else _count_json(root)
    return {"files": files}


def duckdb_text(root: Path, out: Path) -> dict[str, Any]:
    """DuckDB reading every file whole (read_text), keeping valid JSON as JSON, day-partitioned Parquet."""
    import duckdb

    with duckdb.connect() as connection:
        connection.execute("SET threads TO 2")
        connection.execute(
            f"""
            COPY (
                SELECT CASE WHEN json_valid(content) THEN content::JSON END AS json, filename,
                       {DAY_EXPRESSION} AS day
                FROM read_text({_sql_text(f"{root}/**/*.json")})
            ) TO {_sql_text(str(out))} ({COPY_OPTIONS})
            """
        )
    return {"files": _count_json(root)}


def _count_json(root: Path) -> int:
    return sum(name.endswith(".json") for _, _, names in os.walk(root) for name in names)


def _replace_everywhere(original: Any, replacement: Any) -> int:
    """Point every loaded `archiver.*` module attribute that is `original` at `replacement`.

    Modules import functions by name (`from archiver.storage.location import open_store`),
    so patching the defining module alone would miss them. Returns how many were replaced.
    """
    replaced = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("archiver") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, replacement)
                replaced += 1
    return replaced


def archiver_compact(source: str, dest: str) -> dict[str, Any]:
    """The archiver itself, through the same function the CLI calls; requests split by store."""
    import archiver.cli.main as cli
    from archiver.config import settings_from_env

    before = _work_cpu_seconds()
    report = asyncio.run(cli.compact(source, dest, settings_from_env())).as_dict()
    result: dict[str, Any] = {"report": report, "work_cpu_seconds": _work_cpu_seconds() - before}
    for role, use in report["by_store"].items():  # type: ignore[attr-defined]
        use = dict(use)
        read, written = use.pop("bytes_read"), use.pop("bytes_written")
        result[f"{role}_requests"] = use
        result[f"{role}_bytes"] = {"read": read, "written": written}
    return result


def _work_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children so far (a task's work: the difference)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def archiver_sqs(source: str, batch_size: int, seed: int) -> dict[str, Any]:
    """`sqs_handler`'s work on every object of the source, announced in shuffled batches of `batch_size`.

    Each batch is one invocation of a warm execution environment (ARCHIVER_SOURCE and
    ARCHIVER_DEST from the environment), its messages EventBridge "Object Created" events
    carrying the key, size and ETag S3 would send. The requests are the run reports'
    (`by_store`), summed over the invocations; `work_cpu_seconds` is the handling alone.
    """
    import random

    from archiver.aws.runtime import close_runtime, current_runtime
    from archiver.aws.sqs_batch import handle_batch

    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    records = [_notification(bucket, prefix, key, size, etag) for key, size, etag in _listing(bucket, prefix)]
    random.Random(seed).shuffle(records)  # objects arrive in no key order
    totals: dict[str, dict[str, int]] = {}
    failed = invocations = 0
    before = _work_cpu_seconds()
    for start in range(0, len(records), batch_size):
        result = handle_batch({"Records": records[start : start + batch_size]}, None, current_runtime())
        invocations += 1
        failed += len(result.failed_messages)
        report = result.outcome.report if result.outcome is not None else None
        for role, use in (report.by_store if report is not None else {}).items():
            for kind, count in use.items():
                totals.setdefault(role, {}).setdefault(kind, 0)
                totals[role][kind] += count
    work = _work_cpu_seconds() - before
    close_runtime()
    return {
        "objects": len(records),
        "batch_size": batch_size,
        "invocations": invocations,
        "failed_messages": failed,
        "by_store": totals,
        "work_cpu_seconds": work,
    }


def _listing(bucket: str, prefix: str) -> list[tuple[str, int, str]]:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(
            (item["Key"], item["Size"], item["ETag"].strip('"')) for item in page.get("Contents", ())
        )
    return found


def _notification(bucket: str, prefix: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """One SQS record as the template's EventBridge rule delivers an S3 "Object Created" event."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2024-09-20T10:15:01Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "0066D4B1D2E3F4A5B6"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "111122223333",
            "reason": "PutObject",
        },
    }
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + "x" * 200,
        "body": orjson.dumps(event).decode(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1726827301000"},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:archiver-objects",
        "awsRegion": "us-east-1",
    }


def archiver_plan(source: str, dest: str) -> dict[str, Any]:
    """`archiver plan SOURCE DEST`: the units of the window, with the split recorded in DEST."""
    from archiver.config import settings_from_env
    from archiver.engine import api

    async def run() -> list[dict[str, object]]:
        settings = settings_from_env()
        async with api.open_stores(source, dest, settings) as (source_store, dest_store):
            return [unit.as_dict() for unit in await api.plan(source_store, dest_store, settings)]

    return {"units": asyncio.run(run())}


MEMPROFILE_TARGETS = (
    "archiver.formats.normalize:read_object",
    "archiver.engine.generation:GenerationBuilder.add_group",
    "archiver.engine.writer:PartitionWriter.add_rows",
    "archiver.engine.writer:PartitionWriter._flush",
    "archiver.engine.ledger:encode_index",
)
"""Synchronous functions whose calls the heap peak is attributed to. Parsing must run in this
process for read_object to be seen: `run.py --memprofile` sets ARCHIVER_PARSE_WORKERS=1."""


def archiver_memprofile(source: str, dest: str) -> dict[str, Any]:
    """The archiver under tracemalloc, the heap's peak attributed to the (synchronous) function it
    happened in: for each target, the highest traced heap seen during one of its calls and the
    largest rise within one call. Peaks outside every target are filed under "(elsewhere)".
    Arrow's buffers are not traced (see arrow_pool); interpreter and libraries are baseline_rss_mb.
    """
    import functools
    import importlib
    import tracemalloc

    stats: dict[str, dict[str, float]] = {}
    depth = 0

    def record(name: str, peak: int, rise: int) -> None:
        row = stats.setdefault(name, {"calls": 0, "heap_peak_mb": 0.0, "max_rise_mb": 0.0})
        row["calls"] += name != "(elsewhere)"
        row["heap_peak_mb"] = max(row["heap_peak_mb"], peak / 2**20)
        row["max_rise_mb"] = max(row["max_rise_mb"], rise / 2**20)

    def wrap(name: str, function: Any) -> Any:
        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            nonlocal depth
            if depth:
                return function(*args, **kwargs)
            before, peak = tracemalloc.get_traced_memory()
            record("(elsewhere)", peak, 0)
            tracemalloc.reset_peak()
            depth += 1
            try:
                return function(*args, **kwargs)
            finally:
                depth -= 1
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                record(name, peak, peak - before)

        return measured

    importlib.import_module("archiver.cli.main")
    importlib.import_module("archiver.engine.api")
    importlib.import_module("archiver.engine.parsing")
    for target in MEMPROFILE_TARGETS:
        module_name, _, path = target.partition(":")
        holder: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            holder = getattr(holder, parent, None)
        if holder is None or not hasattr(holder, attribute):
            print(f"measure.py: no {target} to trace (renamed?)", file=sys.stderr)
            continue
        original = getattr(holder, attribute)
        wrapped = wrap(target, original)
        if parents:  # a method: the class attribute is what every caller reaches
            setattr(holder, attribute, wrapped)
        else:  # a function: also where other modules imported it by name
            _replace_everywhere(original, wrapped)
    baseline = _peak_rss_mb()
    largest = 0
    if "://" not in source:
        largest = max((entry.stat().st_size for entry in _walk_files(Path(source))), default=0)
    tracemalloc.start(1)
    result = archiver_compact(source, dest)
    _, peak = tracemalloc.get_traced_memory()
    record("(elsewhere)", peak, 0)
    tracemalloc.stop()
    overall = max(row["heap_peak_mb"] for row in stats.values())
    result.update(
        baseline_rss_mb=baseline,
        largest_object_bytes=largest,
        traced_peak_mb=overall,
        functions=dict(sorted(stats.items(), key=lambda item: -item[1]["heap_peak_mb"])),
    )
    return result


def _walk_files(root: Path) -> Any:
    for folder, _, names in os.walk(root):
        for name in names:
            yield Path(folder, name)


def bare_get_loop(endpoint: str, bucket: str, concurrency: int) -> dict[str, Any]:
    """The S3 floor: list the bucket and GET every object with aioboto3, nothing else."""
    from botocore.config import Config

    from archiver.local.moto_server import moto_session

    async def run() -> dict[str, Any]:
        session = moto_session()
        config = Config(max_pool_connections=concurrency)
        async with session.client("s3", endpoint_url=endpoint, config=config) as client:
            keys: list[str] = []
            lists = 0
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket):
                lists += 1
                keys.extend(item["Key"] for item in page.get("Contents", ()))
            gate = asyncio.Semaphore(concurrency)
            received = 0

            async def fetch(key: str) -> None:
                nonlocal received
                async with gate:
                    response = await client.get_object(Bucket=bucket, Key=key)
                    async with response["Body"] as body:
                        received += len(await body.read())

            await asyncio.gather(*(fetch(key) for key in keys))
            return {
                "objects": len(keys),
                "bytes_read": received,
                "requests": {"list": lists, "get": len(keys)},
            }

    return asyncio.run(run())


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    task, *args = sys.argv[1:]
    sampled = task.startswith("archiver") or os.environ.get("BENCH_SAMPLE_TREE") == "1"
    sampler = TreeSampler() if sampled else None
    if sampler is not None:
        sampler.__enter__()
    started = time.perf_counter()
    if task == "floor":
        result = parse_floor(Path(args[0]))
    elif task == "duckdb":
        result = duckdb_copy(Path(args[0]), Path(args[1]), Path(args[2]) if len(args) > 2 else None)
    elif task == "duckdb-text":
        result = duckdb_text(Path(args[0]), Path(args[1]))
    elif task == "archiver":
        result = archiver_compact(args[0], args[1])
    elif task == "archiver-sqs":
        result = archiver_sqs(args[0], int(args[1]), int(args[2]))
    elif task == "plan":
        result = archiver_plan(args[0], args[1])
    elif task == "archiver-memprofile":
        result = archiver_memprofile(args[0], args[1])
    elif task == "bare-get":
        result = bare_get_loop(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown task {task}")
    result["seconds"] = time.perf_counter() - started
    if sampler is not None:
        sampler.__exit__(None, None, None)
        result.update(sampler.as_dict())
    result["cpu_seconds"] = _cpu_seconds()
    descendants = _descendants_cpu_seconds()
    if descendants is not None:  # the parse pool's workers (and DuckDB has none: its threads are ours)
        result["cpu_seconds_descendants"] = descendants
    result["peak_rss_mb"] = _peak_rss_mb()
    if sampler is not None:  # the work happens in worker processes: the largest one's peak
        result["peak_rss_mb"] = max(result["peak_rss_mb"], sampler.process_peak_mb)
    if "pyarrow" in sys.modules:  # Arrow's own allocator, invisible to Python's memory tools
        pool = sys.modules["pyarrow"].default_memory_pool()
        result["arrow_pool"] = {"backend": pool.backend_name, "max_mb": pool.max_memory() / 2**20}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
