from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from archiver.engine.writer import BufferBudget, Compression, UnitWriter, read_day_partition
from archiver.formats.schema import FIELD_ID_KEY, FIELD_IDS, FILE_SCHEMAS, JOB_LINES, JOBS


def _job_row(job_id: str, user: str, recipe: str, started: int) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(JOBS.names)
    row.update(job_id=job_id, user_id=user, recipe_id=recipe, started_at=started, source_key=f"k/{job_id}")
    return row


def test_rows_land_sorted_in_partitioned_files_with_the_explicit_schema(tmp_path: Path) -> None:
    # GIVEN rows out of order for one day, and one quarantine row
    writer = UnitWriter("d20240820", 1, "abcd", tmp_path, target_bytes=1 << 30, row_group_rows=1000)
    day = dt.date(2024, 8, 20)
    keys = {
        writer.add_rows("jobs", day, [_job_row("j-2", "2", "9", 20), _job_row("j-1", "1", "9", 10)], 100),
        writer.add_rows("jobs", day, [_job_row("j-3", "1", "8", 30)], 100),
    }
    quarantine_row = {"source_key": "x", "source_etag": "e", "size": 0, "reason": "empty", "detail": "d"}
    writer.add_rows("quarantine", day, [quarantine_row], 10)
    # WHEN the generation is closed
    files = {written.table: written for written in writer.close()}
    # THEN each table has one file at the partition's key, sorted by user, recipe, start
    assert keys == {"jobs/date=2024-08-20/d20240820-g000001-abcd-0000.parquet"}
    assert files["jobs"].key in keys
    assert files["quarantine"].key == "quarantine/d20240820-g000001-abcd-0000.parquet"
    table = pq.read_table(files["jobs"].path)
    assert table.schema.equals(FILE_SCHEMAS["jobs"], check_metadata=True)
    assert table.column("job_id").to_pylist() == ["j-3", "j-1", "j-2"]
    quarantine = pq.read_table(files["quarantine"].path)
    assert quarantine.schema.equals(FILE_SCHEMAS["quarantine"], check_metadata=True)
    assert read_day_partition(files["jobs"].key) == day


def test_files_carry_the_partition_day_and_a_field_id_on_every_column(tmp_path: Path) -> None:
    # GIVEN a job row of one day
    writer = UnitWriter("d20240820", 1, "abcd", tmp_path, target_bytes=1 << 30, row_group_rows=1000)
    day = dt.date(2024, 8, 20)
    writer.add_rows("jobs", day, [_job_row("j-1", "1", "9", 10)], 100)
    # WHEN its file is written
    (written,) = writer.close()
    # THEN the file holds the row's columns plus partition_date = the day, each with its Parquet field id
    schema = pq.read_schema(written.path)
    assert schema.names == [*JOBS.names, "partition_date"]
    ids = {field.name: int(field.metadata[FIELD_ID_KEY]) for field in schema}
    assert ids == FIELD_IDS["jobs"]
    assert pq.ParquetFile(written.path).schema.column(0).path == "job_id"
    assert pq.read_table(written.path).column("partition_date").to_pylist() == [day]


def test_files_roll_at_the_target_size(tmp_path: Path) -> None:
    # GIVEN a tiny target size and row groups of 10 rows
    writer = UnitWriter("loose", 2, "ef01", tmp_path, target_bytes=1, row_group_rows=10)
    day = dt.date(2024, 8, 21)
    # WHEN 35 rows arrive in batches of 5
    for batch in range(7):
        rows = [_job_row(f"j-{batch}-{i}", "1", "1", i) for i in range(5)]
        writer.add_rows("jobs", day, rows, 10)
    files = writer.close()
    # THEN every flushed row group closed a file, and no row was lost
    assert len(files) == 4
    assert sum(pq.read_metadata(f.path).num_rows for f in files) == 35
    assert len({f.key for f in files}) == 4


def test_a_shared_budget_bounds_what_all_writers_buffer(tmp_path: Path) -> None:
    # GIVEN two units' writers sharing a small budget of buffered bytes
    budget = BufferBudget(200_000)
    first = UnitWriter("d20240820", 1, "aaaa", tmp_path, 1 << 30, 1_000_000, budget=budget)
    second = UnitWriter("d20240821", 1, "bbbb", tmp_path, 1 << 30, 1_000_000, budget=budget)
    day = dt.date(2024, 8, 20)
    # WHEN both buffer far more rows than the budget holds
    peak = 0
    for batch in range(40):
        for writer in (first, second):
            rows = [_job_row(f"j-{batch}-{i}", "1", "1", i) for i in range(200)]
            writer.add_rows("jobs", day, rows, 100)
            peak = max(peak, budget.used)
    files = first.close() + second.close()
    # THEN what is buffered never passes the limit by more than one chunk, and no row is lost
    assert peak <= 200_000 + 200_000
    assert budget.used == 0
    assert sum(pq.read_metadata(f.path).num_rows for f in files) == 2 * 40 * 200
    assert all(pq.read_metadata(f.path).num_row_groups > 1 for f in files)


def _line_row(job_id: str, index: int, rng: random.Random) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(JOB_LINES.names)
    payload = {
        f"field_{n}": rng.choice(["open", "closed", "pending"]) + str(rng.randint(0, 999)) for n in range(40)
    }
    row.update(
        job_id=job_id, line_index=index, source_key=f"k/{job_id}", output=orjson.dumps(payload).decode()
    )
    return row


def _written_bytes(
    tmp_path: Path, compression: Compression, rows: list[dict[str, object]]
) -> tuple[int, list[object]]:
    writer = UnitWriter(
        "d20240820",
        1,
        compression.codec + str(compression.payload_level),
        tmp_path,
        1 << 30,
        100_000,
        compression=compression,
    )
    writer.add_rows("job_lines", dt.date(2024, 8, 20), rows, 1)
    (written,) = writer.close()
    return written.path.stat().st_size, pq.read_table(written.path).column("output").to_pylist()


def test_payload_columns_get_their_own_deeper_zstd_level(tmp_path: Path) -> None:
    # GIVEN two thousand step lines with JSON outputs
    rng = random.Random(5)
    rows = [_line_row(f"j-{n // 4}", n % 4, rng) for n in range(2000)]
    # WHEN they are written with the payload level equal to the others', then deeper
    flat_size, flat_outputs = _written_bytes(tmp_path, Compression("zstd", 3, 3), rows)
    deep_size, deep_outputs = _written_bytes(tmp_path, Compression("zstd", 3, 19), rows)
    # THEN the deeper file is smaller and holds the same payloads
    assert deep_size < flat_size * 0.97
    assert sorted(map(str, deep_outputs)) == sorted(map(str, flat_outputs))
    # AND ids keep the base level, and another codec gets one level for every column
    levels = Compression("zstd", 3, 19).levels(JOB_LINES)
    assert isinstance(levels, dict) and levels["output"] == 19 and levels["job_id"] == 3
    assert Compression("gzip", 6, 19).levels(JOB_LINES) == 6


def test_jobs_files_carry_no_dictionaries_and_step_lines_keep_theirs(tmp_path: Path) -> None:
    # GIVEN a generation with sorted jobs of a few users and recipes, and their step lines
    rng = random.Random(7)
    writer = UnitWriter("d20240820", 1, "abcd", tmp_path, target_bytes=1 << 30, row_group_rows=1000)
    day = dt.date(2024, 8, 20)
    jobs = [_job_row(f"j-{n}", str(n % 3), str(n % 5), n) for n in range(300)]
    writer.add_rows("jobs", day, jobs, 300 * 100)
    writer.add_rows("job_lines", day, [_line_row(f"j-{n // 4}", n % 4, rng) for n in range(1200)], 1200 * 100)
    # WHEN it is closed
    files = {written.table: written for written in writer.close()}
    # THEN no column of the jobs file is dictionary-encoded (zstd packs its sorted repeats better),
    # while the step lines' id columns are
    assert not {encoding for encoding in _encodings(files["jobs"].path).values() if "DICTIONARY" in encoding}
    assert "RLE_DICTIONARY" in _encodings(files["job_lines"].path)["job_id"]
    assert pq.read_table(files["jobs"].path).column("job_id").to_pylist()[:2] == ["j-0", "j-15"]


def _encodings(path: Path) -> dict[str, str]:
    """The encodings of each column chunk of the first row group, by column."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    return {
        group.column(i).path_in_schema: " ".join(group.column(i).encodings) for i in range(group.num_columns)
    }
