"""The bench's printed tables and its targets (issue 7's goals), from the results dict."""

from __future__ import annotations

import json
from typing import Any

MB = 1_000_000
PUBLISH_BATCH_SECONDS = 60
"""A publish of one SQS batch fits the minute the template's 5-minute freshness leaves to archiving and
publishing (batching window 120 s + schedule period 60 s + this)."""
PEAK_LIMIT_MB = 512
PEAK_GROWTH = 1.25
ADD_BYTES_LIMIT = 4 * MB

LOCAL_LABELS = {
    "archiver": "(a) archiver compact",
    "archiver_w1": "(a') archiver, ARCHIVER_PARSE_WORKERS=1",
    "duckdb": "(b) DuckDB read_json_objects+COPY",
    "duckdb_text": "(b') DuckDB read_text+COPY",
    "floor": "(c) floor: one core, read + orjson.loads",
}


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    all_rows = ([header] if header else []) + rows
    widths = [max(len(row[i]) for row in all_rows if i < len(row)) for i in range(max(map(len, all_rows)))]
    lines = [f"\n{title}", "-" * len(title)]
    for index, row in enumerate(all_rows):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if header and index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def mb(value: float) -> str:
    return f"{value / MB:,.1f} MB"


def target_row(
    name: str, value: float, target: float, kind: str, shown: str, target_shown: str | None = None
) -> dict[str, Any]:
    """kind: ">=" (at least), "<=" (at most) or "==" (exactly)."""
    met = {">=": value >= target, "<=": value <= target, "==": abs(value - target) < 1e-9}[kind]
    if met:
        margin = "met"
    elif kind == ">=":
        margin = f"MISSED: {value / target:.2f} of target ({target / value:.1f}x short)"
    elif kind == "<=":
        margin = f"MISSED: {value / target:.2f}x the limit"
    else:
        margin = f"MISSED: {value:g} vs {target:g}"
    return {
        "name": name,
        "value": value,
        "target": target,
        "kind": kind,
        "met": met,
        "ratio": value / target if target else None,
        "shown": shown,
        "target_shown": target_shown or f"{kind} {target:g}",
        "margin": margin,
    }


def _corpora_table(results: dict[str, Any]) -> str:
    rows = []
    for name, c in results["corpora"].items():
        params = c["params"]
        rows.append(
            (
                name,
                params.get("kind", "synth"),
                f"{params['jobs']:,}",
                str(params["days"]),
                str(params["big_objects"]),
                f"{c['objects']:,}",
                f"{c['json_files']:,}",
                mb(c["bytes"]),
                f"{c['bytes'] / max(c['objects'], 1) / 1000:.1f}",
                "reused" if c["reused"] else f"written in {c['write_seconds']:.0f}s",
            )
        )
    return table(
        "Corpora (synth: archiver.local.synth.write_corpus; heldout: bench/heldout.py, jobs = objects)",
        rows,
        ("corpus", "kind", "jobs", "days", "big", "objects", ".json", "bytes", "avg KB", ""),
    )


def _local_tables(local: dict[str, Any]) -> list[str]:
    names = [name for name in LOCAL_LABELS if name in local["seconds_median"]]
    rows = [
        (
            LOCAL_LABELS[name],
            f"{local['seconds_median'][name]:.2f}",
            " ".join(f"{s:.2f}" for s in local["seconds_all"][name]),
            f"{local['cpu_seconds_median'][name]:.2f}",
            f"{local['cpu_seconds_total_median'][name]:.2f}",
            f"{local['files_per_second'][name]:,.0f}",
            f"{local['peak_rss_mb'][name]:.0f}",
        )
        for name in names
    ]
    out = [
        table(
            f"Local folder, corpus {local['corpus']}: {local['files']:,} .json files ({mb(local['bytes'])}), "
            f"{local['rounds']} interleaved rounds, medians",
            rows,
            ("task", "wall s", "all rounds", "cpu s", "cpu s +pool", "files/s", "peak MB"),
        )
    ]
    ratio_rows = []
    archivers = [name for name in ("archiver", "archiver_w1") if name in names]
    for name in archivers:
        for other, label in (
            ("duckdb", "DuckDB read_json_objects"),
            ("duckdb_text", "DuckDB read_text"),
            ("floor", "parse floor"),
        ):
            key = f"{name}_over_{other}"
            ratio_rows.append(
                (
                    f"{LOCAL_LABELS[name][:4]} {name} / {label}",
                    f"{local['ratios'][key]:.2f}",
                    " ".join(f"{r:.2f}" for r in local["ratios_per_round"][key]),
                )
            )
        if f"{name}_over_floor" in local.get("cpu_ratios", {}):
            key = f"{name}_over_floor"
            ratio_rows.append(
                (
                    f"{LOCAL_LABELS[name][:4]} {name} / parse floor, in CPU seconds",
                    f"{local['cpu_ratios'][key]:.2f}",
                    " ".join(f"{r:.2f}" for r in local["cpu_ratios_per_round"][key]),
                )
            )
    if "ceiling_over_duckdb" in local:
        ratio_rows.append(
            (
                f"ceiling: {local['cores']} cores x parse floor / DuckDB read_json_objects",
                f"{local['ceiling_over_duckdb']:.2f}",
                "",
            )
        )
    if "archiver_over_archiver_w1" in local["ratios"]:
        ratio_rows.append(
            (
                "what the parse pool buys: default / 1 worker",
                f"{local['ratios']['archiver_over_archiver_w1']:.2f}",
                "",
            )
        )
    out.append(
        table(
            f"Local ratios, corpus {local['corpus']} (files/s over files/s): of the medians, and per round",
            ratio_rows,
        )
    )
    return out


def _moto_table(moto: dict[str, Any]) -> str:
    rows = [
        (
            label,
            f"{moto['seconds_median'][name]:.2f}",
            " ".join(f"{s:.2f}" for s in moto["seconds_all"][name]),
            f"{moto['cpu_seconds_total_median'][name]:.2f}",
            f"{moto['objects_per_second'][name]:,.0f}",
            json.dumps(moto["archiver_requests"] if name == "archiver" else moto["bare_requests"]),
        )
        for name, label in (("archiver", "archiver compact s3->s3"), ("bare", "bare aioboto3 list+GET"))
    ]
    per_round = " ".join(f"{ratio:.2f}" for ratio in moto["ratio_per_round"])
    rows.append(("ratio archiver / bare", "", per_round, "", f"{moto['ratio_archiver_over_bare']:.2f}", ""))
    return table(
        f"moto (own process), {moto['objects']:,} objects, concurrency {moto['concurrency']}, "
        f"{moto['rounds']} interleaved rounds, medians",
        rows,
        ("task", "wall s", "all rounds", "cpu s", "objects/s", "requests"),
    )


def _memory_table(results: dict[str, Any], memory: dict[str, Any]) -> str:
    rows = [
        (
            "main synth corpus (local rounds)",
            f"{results['corpora']['corpus']['params']['jobs']:,}",
            "0",
            f"{memory['main_peak_rss_mb']:.0f}",
            "",
            "",
            "",
        )
    ]
    for figure in memory["runs"].values():
        rows.append(
            (
                figure["corpus"],
                f"{figure['jobs']:,}",
                str(figure["big_objects"]),
                " / ".join(f"{peak:.0f}" for peak in figure["peak_rss_mb_all"]),
                f"{figure.get('tree_peak_pss_mb') or figure.get('tree_peak_rss_mb') or 0:.0f}",
                f"{figure['seconds']:.1f}",
                f"{figure['files_per_second']:,.0f}",
            )
        )
    for label, value in memory.get("growth", {}).items():
        rows.append((f"growth {label}", "", "", f"{value * 100:+.1f}%", "", "", ""))
    return table(
        "Archiver peak RSS over 30-day corpora (VmHWM, MB)",
        rows,
        ("corpus", "jobs", "big", "peak MB", "tree PSS MB", "s", "files/s"),
    )


def _scaling_tables(scaling: dict[str, Any]) -> list[str]:
    rows = []
    for label, day in scaling["days"].items():
        for step in ("full", "noop", "added"):
            figure = day[step]
            source = figure.get("source_requests") or {}
            dest = figure.get("dest_requests") or {}
            rows.append(
                (
                    f"{label}: {'+' + str(day['added']['late_jobs']) + ' jobs' if step == 'added' else step}",
                    f"{day['objects']:,}" if step == "full" else "",
                    f"{figure['peak_rss_mb']:.0f}",
                    f"{figure.get('tree_peak_pss_mb') or figure.get('tree_peak_rss_mb') or 0:.0f}",
                    f"{figure['seconds']:.1f}",
                    f"{figure['units']}/{figure['units_committed']}/{figure['units_sealed']}",
                    str(source.get("list", "")),
                    str(source.get("get", "")),
                    str(dest.get("get", "")),
                    "" if figure.get("dest_bytes_read") is None else f"{figure['dest_bytes_read']:,}",
                    str(dest.get("put", "")),
                    f"{figure['bytes_written']:,}",
                    str(figure["objects_archived"]),
                )
            )
        rows.append(
            (
                f"{label}: plan SOURCE DEST",
                "",
                f"{day['plan']['peak_rss_mb']:.0f}",
                "",
                "",
                f"{day['plan']['units']} ({day['plan']['day_units']} day=)",
                *[""] * 7,
            )
        )
    out = [
        table(
            "Scaling: one-day synth corpora, local folder (run report; peak = the largest VmHWM of any "
            "of the run's processes, tree PSS = sampled PSS of all of them together)",
            rows,
            (
                "run",
                "objects",
                "peak MB",
                "tree PSS MB",
                "wall s",
                "units/comm/seal",
                "src LIST",
                "src GET",
                "dst GET",
                "dst bytes read",
                "dst PUT",
                "bytes written",
                "archived",
            ),
        )
    ]
    ratio_rows = [(label, f"{value:.2f}x") for label, value in scaling["peak_ratios"].items()]
    for label, day in scaling["days"].items():
        sizes = [count for count in day["plan"]["day_unit_objects"] if count is not None]
        if sizes:
            split = f"{len(sizes)} day= units of {min(sizes):,} to {max(sizes):,} objects"
            ratio_rows.append((f"{label}: plan SOURCE DEST", split))
    out.append(table("Scaling: peak RSS ratios, and how the day was split", ratio_rows))
    return out


def _archive_table(results: dict[str, Any]) -> str:
    rows = []
    for tag, local in results.get("local", {}).items():
        archive = local["archive"]
        rows.append(
            (
                tag,
                mb(local["bytes"]),
                mb(archive["parquet_bytes"]),
                str(archive["parquet_files"]),
                mb(archive["archiver_bytes"]),
                f"1/{local['bytes'] / max(archive['parquet_bytes'], 1):.1f}",
                mb(local["duckdb_output"]["parquet_bytes"]),
            )
        )
    return table(
        "Archive size (parquet outside _archiver/ against source bytes)",
        rows,
        ("corpus", "source", "parquet", "files", "_archiver/", "archive/source", "DuckDB output"),
    )


def _incremental_tables(results: dict[str, Any]) -> list[str]:
    out = []
    for label, figures in results.get("incremental", {}).items():
        rows = []
        for step in ("full", "noop", "new_day"):
            figure = figures.get(step)
            if not figure:
                continue
            source = figure.get("source_requests") or {}
            dest = figure.get("dest_requests") or {}
            rows.append(
                (
                    step,
                    f"{figure['seconds']:.2f}",
                    str(source.get("list", "")),
                    str(source.get("get", "")),
                    str(dest.get("list", "")),
                    str(dest.get("get", "")),
                    str(dest.get("put", "")),
                    str(figure.get("objects_archived", "")),
                    json.dumps(figure["requests"]),
                )
            )
        out.append(
            table(
                f"Incremental, {label} source ({figures['base_objects']:,} objects over 30 days; new day: "
                f"{figures['new_objects']} .json objects in {figures['new_day_prefixes']} day folders)",
                rows,
                (
                    "run",
                    "wall s",
                    "src LIST",
                    "src GET",
                    "dst LIST",
                    "dst GET",
                    "dst PUT",
                    "archived",
                    "total requests",
                ),
            )
        )
    return out


def render(results: dict[str, Any]) -> str:
    out = [_corpora_table(results)]
    for local in results.get("local", {}).values():
        out.extend(_local_tables(local))
    if results.get("moto"):
        out.append(_moto_table(results["moto"]))
    if results.get("memory"):
        out.append(_memory_table(results, results["memory"]))
    if results.get("scaling"):
        out.extend(_scaling_tables(results["scaling"]))
    if results.get("local"):
        out.append(_archive_table(results))
    out.extend(_incremental_tables(results))
    if results.get("cost"):
        from cost import cost_tables

        out.extend(cost_tables(results["cost"]))
    if results.get("publish"):
        out.append(_publish_table(results["publish"]))
    if results.get("policy"):
        from policy import policy_tables

        out.extend(policy_tables(results["policy"]))
    out.append(render_targets(results["targets"]))
    return "\n".join(out)


PUBLISH_STEPS = (
    ("publish", "publish after the run"),
    ("noop_publish", "no-op publish"),
    ("batch_publish", "publish after one more batch"),
)


def _publish_table(publish: dict[str, Any]) -> str:
    rows = []
    for step, label in PUBLISH_STEPS:
        figure = publish.get(step)
        if not figure:
            continue
        requests = figure["requests"]
        rows.append(
            (
                label,
                f"{figure['seconds']:.2f}",
                str(figure["commits"]),
                f"{figure['files_added']:,}",
                *(str(requests.get(method, 0)) for method in ("GET", "HEAD", "PUT", "POST", "DELETE")),
                f"{figure['requests_total']:,}",
            )
        )
    batch = publish.get("batch_publish") or {}
    return table(
        f"Publish: Iceberg tables (SQL catalog, tables in the archive bucket on moto) over "
        f"{publish['objects']:,} objects ({publish['files']:,} files)"
        + (f", then {batch['objects']:,} more ({batch['files']:,} files)" if batch else ""),
        rows,
        ("step", "s", "commits", "files added", "GET", "HEAD", "PUT", "POST", "DELETE", "requests"),
    )


def _publish_targets(publish: dict[str, Any]) -> list[dict[str, Any]]:
    noop = publish["noop_publish"]
    first = publish["publish"]
    writes = sum(noop["requests"].get(method, 0) for method in ("PUT", "POST", "DELETE"))
    rows = [
        target_row(
            "publish after the run: tables failed",
            len(first["failures"]),
            0,
            "==",
            str(len(first["failures"])),
        ),
        target_row("no-op publish: commits", noop["commits"], 0, "==", str(noop["commits"])),
        target_row("no-op publish: PUT/POST/DELETE requests", writes, 0, "==", str(writes)),
    ]
    batch = publish.get("batch_publish")
    if batch:
        seconds = batch["seconds"]
        rows.append(
            target_row(
                f"publish after a batch of {batch['objects']:,}: seconds",
                seconds,
                PUBLISH_BATCH_SECONDS,
                "<=",
                f"{seconds:.1f}",
            )
        )
    return rows


def render_targets(rows: list[dict[str, Any]]) -> str:
    met = sum(row["met"] for row in rows)
    return table(
        f"Targets: {met} of {len(rows)} met",
        [
            (
                row["name"],
                row["shown"],
                row["target_shown"],
                "" if row.get("ratio") is None else f"{row['ratio']:.2f}",
                row["margin"],
            )
            for row in rows
        ],
        ("target", "measured", "goal", "measured/goal", "status"),
    )


def _local_targets(tag: str, local: dict[str, Any]) -> list[dict[str, Any]]:
    ratios = local["ratios"]
    duckdb, floor = ratios["archiver_over_duckdb"], ratios["archiver_over_floor"]
    share = local["archive"]["parquet_bytes"] / local["bytes"]
    one = ratios.get("archiver_w1_over_floor")
    one_cpu = local.get("cpu_ratios", {}).get("archiver_w1_over_floor")
    per_core = []
    if one is not None:
        shown = f"{one:.2f}" if one_cpu is None else f"{one:.2f} (CPU s {one_cpu:.2f})"
        name = f"{tag}: one process / one-core parse floor"
        per_core = [target_row(name, one, 0.25, ">=", shown, ">= 0.25")]
    return [
        *per_core,
        target_row(
            f"{tag}: archiver / DuckDB files/s",
            duckdb,
            10,
            ">=",
            f"{duckdb:.2f}x (ceiling {local.get('ceiling_over_duckdb', 0):.1f}x)",
            ">= 10x",
        ),
        target_row(f"{tag}: archiver / one-core parse floor", floor, 1 / 3, ">=", f"{floor:.2f}", ">= 1/3"),
        target_row(f"{tag}: archive bytes / source bytes", share, 0.1, "<=", f"1/{1 / share:.1f}", "<= 1/10"),
    ]


def _scaling_targets(scaling: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    base_label = scaling["base"]
    days = scaling["days"]
    base = days[base_label]["full"]["peak_rss_mb"]
    for label, day in days.items():
        peak = day["full"]["peak_rss_mb"]
        rows.append(
            target_row(
                f"day {label}: peak RSS of the full run (MB)", peak, PEAK_LIMIT_MB, "<=", f"{peak:.0f}"
            )
        )
        tree = day["full"].get("tree_peak_pss_mb") or day["full"].get("tree_peak_rss_mb")
        if tree:  # what a Lambda's limit sees: the archiver and its parse workers together
            rows.append(
                target_row(
                    f"day {label}: all its processes (PSS, sampled, MB)",
                    tree,
                    PEAK_LIMIT_MB,
                    "<=",
                    f"{tree:.0f}",
                )
            )
        if label != base_label:
            rows.append(
                target_row(
                    f"day {label}: full-run peak / day {base_label}'s",
                    peak / base,
                    PEAK_GROWTH,
                    "<=",
                    f"{peak / base:.2f}x",
                )
            )
            units = day["plan"]["day_units"]
            rows.append(
                target_row(f"day {label}: plan shows several day= units", units, 2, ">=", str(units), ">= 2")
            )
        added = day["added"]
        late = added["late_jobs"]
        gets = (added.get("source_requests") or {}).get("get")
        if gets is not None:
            rows.append(
                target_row(
                    f"+{late} jobs into day {label}: source GETs", gets, late, "==", str(gets), f"== {late}"
                )
            )
        written = added["bytes_written"]
        rows.append(
            target_row(
                f"+{late} jobs into day {label}: bytes written",
                written,
                ADD_BYTES_LIMIT,
                "<=",
                mb(written),
                "<= 4 MB",
            )
        )
        ratio = added["peak_rss_mb"] / base
        rows.append(
            target_row(
                f"+{late} jobs into day {label}: peak / day {base_label}'s full run",
                ratio,
                PEAK_GROWTH,
                "<=",
                f"{added['peak_rss_mb']:.0f} MB = {ratio:.2f}x",
            )
        )
        base_read = days[base_label]["added"].get("dest_bytes_read")
        read = added.get("dest_bytes_read")
        if label != base_label and base_read and read is not None:
            # "reads O(k) plus a bounded constant": the same k into a 10x larger day reads about as much.
            rows.append(
                target_row(
                    f"+{late} jobs into day {label}: archive bytes read / into day {base_label}",
                    read / base_read,
                    PEAK_GROWTH,
                    "<=",
                    f"{mb(read)} = {read / base_read:.2f}x",
                )
            )
    return rows


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for tag, local in results.get("local", {}).items():
        rows.extend(_local_targets(tag, local))
    moto = results.get("moto")
    if moto:
        ratio = moto["ratio_archiver_over_bare"]
        rows.append(
            target_row("moto: archiver / bare aioboto3 list+GET objects/s", ratio, 0.9, ">=", f"{ratio:.2f}")
        )
    if results.get("scaling"):
        rows.extend(_scaling_targets(results["scaling"]))
    memory = results.get("memory")
    if memory:
        for label, peak in [("main synth corpus", memory["main_peak_rss_mb"])] + [
            (run["corpus"], run["peak_rss_mb"]) for run in memory["runs"].values()
        ]:
            rows.append(target_row(f"peak RSS {label} (MB)", peak, PEAK_LIMIT_MB, "<=", f"{peak:.0f}"))
        for label, growth in memory.get("growth", {}).items():
            rows.append(
                target_row(f"RSS growth {label}", growth, 0.20, "<=", f"{growth * 100:+.1f}%", "<= +20%")
            )
    if results.get("cost"):
        from cost import cost_targets

        rows.extend(cost_targets(results["cost"]))
    if results.get("publish"):
        rows.extend(_publish_targets(results["publish"]))
    if results.get("policy"):
        from policy import policy_targets

        rows.extend(policy_targets(results["policy"]))
    for label, figures in results.get("incremental", {}).items():
        gets = (figures["new_day"].get("source_requests") or {}).get("get")
        new = figures["new_objects"]
        if gets is None:
            rows.append(
                {
                    "name": f"{label} new day: source GETs vs new objects",
                    "value": None,
                    "target": new,
                    "met": False,
                    "ratio": None,
                    "shown": "?",
                    "target_shown": "equal",
                    "margin": "NOT MEASURED: no source/dest request split",
                }
            )
        else:
            rows.append(
                target_row(
                    f"{label} new day: source GETs vs new objects",
                    gets,
                    new,
                    "==",
                    f"{gets} / {new}",
                    f"== {new}",
                )
            )
    return rows
