"""The `archiver` command line: parse arguments, build settings and stores, run, report.

Exit codes: 0 the run finished (quarantined objects included); 2 bad arguments or
settings; 3 storage unreachable, missing or denied; 4 the run finished but some
objects could not be read after retries (they are named; the next run retries
them), or a unit's ledger file is malformed (the unit and the file are named);
5 `verify` found a gap.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import orjson

from archiver import __version__
from archiver.cli.logs import configure_logging
from archiver.config import Settings, parse_date, settings_from_env
from archiver.errors import ArchiverError, ConfigError, LedgerFormatError, StorageError

if TYPE_CHECKING:
    from archiver.engine.api import PublishReport, RedactReport, RunReport, UnitScope, VerifyReport

T = TypeVar("T")

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_UNREAD = 4
EXIT_GAP = 5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archiver", description="Archive Workato audit-log streams from S3 into Parquet.")
    parser.add_argument("--version", action="version", version=f"archiver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    compact = commands.add_parser("compact", help="archive SOURCE into DEST (incremental, exactly once)")
    compact.add_argument("source", metavar="SOURCE", help="s3://bucket/prefix or a local folder")
    compact.add_argument("dest", metavar="DEST", help="s3://bucket/prefix or a local folder")
    _add_window(compact)
    compact.add_argument("--json", action="store_true", help="print the run report as one JSON object")
    compact.add_argument("--concurrency", type=_positive, help="GETs in flight (default 64)")
    scope = compact.add_mutually_exclusive_group()
    scope.add_argument("--unit", help="process one unit printed by `archiver plan` (day=YYYY-MM-DD or loose)")
    scope.add_argument("--shard", type=_shard, help="process shard I of N (0-based), e.g. 2/8")

    verify = commands.add_parser("verify", help="prove every source object in the window is archived")
    verify.add_argument("source", metavar="SOURCE")
    verify.add_argument("dest", metavar="DEST")
    _add_window(verify)
    verify.add_argument("--json", action="store_true", help="print the verify report as one JSON object")

    plan = commands.add_parser("plan", help="print the independent units of work as JSON lines")
    plan.add_argument("source", metavar="SOURCE")
    plan.add_argument(
        "dest",
        metavar="DEST",
        nargs="?",
        help="the archive: its recorded split of each day is used (and a new day's is recorded)",
    )
    _add_window(plan)

    _add_pull_activity(commands)

    redact = commands.add_parser("redact", help="rewrite the window's files under the current policy")
    redact.add_argument("dest", metavar="DEST", help="the archive: s3://bucket/prefix or a local folder")
    _add_window(redact)
    redact.add_argument("--json", action="store_true", help="print the report as one JSON object")
    publish = commands.add_parser(
        "publish", help="bring DEST's Iceberg tables to its ledger's state (one commit per table)"
    )
    publish.add_argument("dest", metavar="DEST", help="s3://bucket/prefix or a local folder")
    publish.add_argument("--rebuild", action="store_true", help="recreate the tables from the ledger alone")
    publish.add_argument("--json", action="store_true", help="print the publish report as one JSON object")

    replay = commands.add_parser("replay", help="replay a folder through an embedded S3 server")
    replay.add_argument("dir", metavar="DIR", type=Path)
    replay.add_argument(
        "--out", type=Path, default=Path("archive"), help="where the archive goes (./archive)"
    )
    replay.add_argument("--json", action="store_true")

    synth = commands.add_parser("synth", help="write a realistic synthetic corpus")
    synth.add_argument("outdir", metavar="OUTDIR", type=Path)
    synth.add_argument("--jobs", type=_positive, default=2000)
    synth.add_argument("--seed", type=int, default=0)

    commands.add_parser("demo", help="synth + replay + a short tour of the result")
    _add_verbosity(parser, default=0)
    for command in commands.choices.values():
        _add_verbosity(command, default=argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="log more on stderr: -v INFO, -vv DEBUG"
    )


def _add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_date, help="first layout day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--until", type=_date, help="last layout day, YYYY-MM-DD (inclusive)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not I/N: {text!r}") from error
    if shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"shard must satisfy 0 <= I < N: {text!r}")
    return shard


def _date(text: str) -> Any:
    try:
        return parse_date(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        configure_logging(args.verbose)
        logger.debug("archiver %s: %s", __version__, args.command)
        handler = _HANDLERS[args.command]
        return handler(args)
    except ConfigError as error:
        return _fail(EXIT_USAGE, str(error))
    except StorageError as error:
        return _fail(EXIT_STORAGE, str(error))
    except LedgerFormatError as error:  # names the unit and the file: fix or remove it
        return _fail(EXIT_UNREAD, str(error))
    except ArchiverError as error:
        return _fail(EXIT_STORAGE if error.retryable else EXIT_USAGE, str(error))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")


def _fail(code: int, message: str) -> int:
    print(f"archiver: error: {message}", file=sys.stderr)
    return code


def run_quietly(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, without the tracebacks of connections that died after their request was answered.

    When S3 answers a request early (a 403 to a PutObject sent with `Expect: 100-continue`,
    say) and closes the connection, aiohttp's task writing the body can end with a
    connection error that nothing awaits. asyncio prints such errors with a traceback when
    the task is collected, after the one-line error or the JSON report. The failure that
    matters has already come through the request itself (and botocore's retries), so these
    are dropped; anything else still goes to asyncio's default handler.
    """
    with asyncio.Runner() as runner:
        runner.get_loop().set_exception_handler(_drop_orphaned_connection_errors)
        return runner.run(coroutine)


def _drop_orphaned_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    error = context.get("exception")
    orphaned = context.get("message") == "Task exception was never retrieved"
    import aiohttp

    if orphaned and isinstance(error, ConnectionError | aiohttp.ClientConnectionError):
        return
    loop.default_exception_handler(context)


def run_settings(args: argparse.Namespace) -> Settings:
    settings = settings_from_env().with_window(getattr(args, "since", None), getattr(args, "until", None))
    concurrency = getattr(args, "concurrency", None)
    if concurrency:
        settings = replace(settings, concurrency=concurrency)
    logger.debug("settings: %s", settings)
    return settings


def writing_settings(args: argparse.Namespace) -> Settings:
    """`run_settings` with the redaction policy (ARCHIVER_POLICY, ARCHIVER_POLICY_KEY) loaded: for commands
    that write rows. A policy that cannot be read or is wrong is one line and exit 2, before anything runs."""
    from archiver.config import policy_key_from_env
    from archiver.engine import api

    settings = run_settings(args)
    if not settings.policy_location:
        return settings
    return run_quietly(api.with_policy(settings, policy_key_from_env()))


def _compact(args: argparse.Namespace) -> int:
    from archiver.engine.api import UnitScope

    settings = writing_settings(args)
    scope = UnitScope(unit=args.unit, shard=args.shard)
    logger.info("compacting %s into %s", args.source, args.dest)
    report = run_quietly(compact(args.source, args.dest, settings, scope=scope))
    return emit_report(report, as_json=args.json)


async def compact(
    source_url: str, dest_url: str, settings: Settings, *, scope: UnitScope | None = None
) -> RunReport:
    """Run the archiver (on every core unless a scope or the settings say otherwise)."""
    from archiver.engine import api

    with _progress_bar() as tick:
        return await api.compact_urls(source_url, dest_url, settings, scope=scope, progress=tick)


def _verify(args: argparse.Namespace) -> int:
    settings = run_settings(args)
    report = run_quietly(_run_verify(args.source, args.dest, settings))
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print(
            f"checked {report.objects_checked} objects in {report.units} units: "
            f"{report.objects_archived} archived, {report.objects_quarantined} quarantined; "
            f"{len(report.not_archived)} not archived, {len(report.stale)} stale, "
            f"{len(report.missing_files)} missing files, {len(report.damaged_files)} damaged files, "
            f"{len(report.orphan_files)} orphan files"
        )
    if report.failures:
        units = [failure["unit"] for failure in report.failures]
        more = f" and {len(units) - 3} more" if len(units) > 3 else ""
        listed = f"{len(units)} units could not be verified: {', '.join(units[:3])}{more}"
        return _fail(EXIT_UNREAD, f"{listed}; first error: {report.failures[0]['error']}")
    if report.ok:
        return EXIT_OK
    return _fail(EXIT_GAP, f"the archive has gaps, first: {report.problems()[0]}")


async def _run_verify(source_url: str, dest_url: str, settings: Settings) -> VerifyReport:
    from archiver.engine import api

    async with api.open_stores(source_url, dest_url, settings) as (source, dest):
        assert dest is not None
        return await api.verify(source, dest, settings)


def _publish(args: argparse.Namespace) -> int:
    from archiver.engine import api

    settings = run_settings(args)
    report = run_quietly(api.publish(args.dest, settings, rebuild=args.rebuild))
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print(publish_summary(report))
    if report.failures:
        first = report.failures[0]
        return _fail(EXIT_UNREAD, f"{first.get('table', 'publish')}: {first.get('error', 'failed')}")
    return EXIT_OK


def publish_summary(report: PublishReport) -> str:
    if report.catalog is None:
        return "; ".join(report.notes) or "nothing published"
    tables = ", ".join(
        f"{name} +{change.as_dict()['files_added']}/-{change.as_dict()['files_removed']} files"
        for name, change in sorted(report.tables.items())
    )
    return (
        f"published to {report.catalog}: {report.commits} commits ({tables}); "
        f"{report.snapshots_expired} snapshots expired, {report.files_deleted} files deleted "
        f"in {report.seconds:.1f}s"
    )


def _plan(args: argparse.Namespace) -> int:
    settings = run_settings(args)
    for line in run_quietly(_run_plan(args.source, args.dest, settings)):
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
    return EXIT_OK


async def _run_plan(source_url: str, dest_url: str | None, settings: Settings) -> list[dict[str, object]]:
    from archiver.engine import api

    async with api.open_stores(source_url, dest_url, settings) as (source, dest):
        return [unit.as_dict() for unit in await api.plan(source, dest, settings)]


def emit_report(report: RunReport, *, as_json: bool, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    if as_json:
        stream.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        stream.write(human_summary(report) + "\n")
    if report.failures:
        return _fail(_failure_code(report.failures), _failure_line(report.failures))
    return EXIT_OK


def _failure_code(failures: list[dict[str, str]]) -> int:
    """3 when a permission or the endpoint is the cause (fix the setup), else 4 (retry later)."""
    kinds = {failure.get("kind") for failure in failures}
    return EXIT_STORAGE if kinds & {"AccessDeniedError", "EndpointError"} else EXIT_UNREAD


def _failure_line(failures: list[dict[str, str]]) -> str:
    """One line naming the first few objects and units not done, and the first reason (what to fix)."""
    keys = [failure["key"] for failure in failures if "key" in failure]
    units = [failure["unit"] for failure in failures if "unit" in failure]
    parts: list[str] = []
    for names, noun in ((keys, "objects could not be read"), (units, "units could not be archived")):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{len(names)} {noun}: {', '.join(names[:3])}{more}")
    return f"{'; '.join(parts)}; first error: {failures[0].get('error', 'unknown error')}"


def human_summary(report: RunReport) -> str:
    rows = report.rows
    return (
        f"listed {report.objects_listed} objects: {report.objects_archived} archived, "
        f"{report.objects_skipped} skipped, {report.objects_quarantined} quarantined, "
        f"{report.objects_failed} unreadable\n"
        f"rows: {rows['jobs']} jobs, {rows['job_lines']} job lines, {rows['activity']} activity; "
        f"{report.files_written} files written in {report.seconds:.1f}s"
    )


class _progress_bar:
    """A tqdm bar on stderr when stderr is a terminal; otherwise nothing."""

    def __enter__(self) -> Callable[[int], None] | None:
        self._bar: Any = None
        if not sys.stderr.isatty() or os.environ.get("ARCHIVER_NO_PROGRESS"):
            return None
        from tqdm import tqdm

        self._bar = tqdm(unit="obj", file=sys.stderr, desc="archiving", leave=False)
        bar = self._bar
        return lambda count: bar.update(count)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _require_local_extra(command: str) -> None:
    """replay and demo run an embedded S3 server (moto), which only the `local` extra installs."""
    if importlib.util.find_spec("moto") is None:
        raise ConfigError(f"{command} needs the embedded S3 server: pip install 'archiver[local]'")


def _replay(args: argparse.Namespace) -> int:
    _require_local_extra("replay")
    from archiver.local.replay import replay

    settings = writing_settings(args)
    report = replay(args.dir, args.out, settings)
    code = emit_report(report, as_json=args.json)
    if not args.json:
        print(f"archive written to {args.out}")
    return code


def _synth(args: argparse.Namespace) -> int:
    from archiver.local.synth import write_corpus

    summary = write_corpus(args.outdir, jobs=args.jobs, seed=args.seed)
    print(f"wrote {summary.objects} objects ({summary.total_bytes} bytes) to {args.outdir}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    _require_local_extra("demo")
    from archiver.local.demo import run_demo

    return run_demo(writing_settings(args), out=sys.stdout)


# --- pull-activity ---------------------------------------------------------------------


def _add_pull_activity(commands: Any) -> None:
    pull = commands.add_parser(
        "pull-activity", help="archive Workato's activity audit log API into DEST (incremental)"
    )
    pull.add_argument("dest", metavar="DEST", help="s3://bucket/prefix or a local folder")
    pull.add_argument("--base-url", required=True, help="your data centre's, e.g. https://www.workato.com")
    pull.add_argument("--since", type=_date, help="first day of event time, YYYY-MM-DD (UTC, inclusive)")
    pull.add_argument("--until", type=_date, help="last day of event time, YYYY-MM-DD (UTC, inclusive)")
    pull.add_argument(
        "--managed-user",
        action="append",
        metavar="ID",
        help="an embedded customer workspace to pull (repeatable), or 'all'",
    )
    pull.add_argument("--json", action="store_true", help="print the run report as one JSON object")


def _pull_activity(args: argparse.Namespace) -> int:
    """Token from WORKATO_API_TOKEN; API failures (token, privilege, base URL) exit 3 in one line."""
    from archiver.config import api_token_from_env
    from archiver.errors import ApiError
    from archiver.sources import activity_pull

    settings = writing_settings(args)
    token = api_token_from_env()
    try:
        with _pull_progress() as tick:
            report = run_quietly(
                activity_pull.pull_activity(
                    args.dest,
                    args.base_url,
                    token,
                    settings,
                    managed_users=args.managed_user,
                    progress=tick,
                )
            )
    except ApiError as error:
        return _fail(EXIT_STORAGE, str(error))
    except NotImplementedError as error:
        return _fail(1, f"pull-activity cannot archive yet: {error}")
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        unknown = sum(report.unknown_event_types.values())
        print(
            f"pulled {report.events_pulled} events in {report.pages} pages: {report.events_new} new; "
            f"{report.retries} retries, {unknown} of unknown types; {report.seconds:.1f}s"
        )
    return EXIT_OK


class _pull_progress:
    """A tqdm count of events on stderr when stderr is a terminal; otherwise nothing."""

    def __enter__(self) -> Callable[[int], None] | None:
        self._bar: Any = None
        if not sys.stderr.isatty() or os.environ.get("ARCHIVER_NO_PROGRESS"):
            return None
        from tqdm import tqdm

        self._bar = tqdm(unit="event", file=sys.stderr, desc="pulling activity", leave=False)
        bar = self._bar
        return lambda count: bar.update(count)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _redact(args: argparse.Namespace) -> int:
    """Exit 0 when every unit of the window is under the policy, 4 when some could not be rewritten."""
    settings = writing_settings(args)
    report = run_quietly(_run_redact(args.dest, settings))
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print(
            f"policy {report.policy}: {report.files_rewritten} files of {report.units_rewritten} units "
            f"rewritten ({report.rows} rows), {report.units_checked} units checked"
        )
    if report.failures:
        return _fail(EXIT_UNREAD, _failure_line(report.failures))
    return EXIT_OK


async def _run_redact(dest_url: str, settings: Settings) -> RedactReport:
    from archiver.engine import api

    async with api.open_stores(dest_url, None, settings) as (dest, _):
        return await api.redact(dest, settings)


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "compact": _compact,
    "verify": _verify,
    "plan": _plan,
    "replay": _replay,
    "synth": _synth,
    "demo": _demo,
    "pull-activity": _pull_activity,
    "redact": _redact,
    "publish": _publish,
}
