"""The same behaviour from both object stores: a local folder and S3 (moto over HTTP).

Every test in the first part runs twice through the parametrised `store` fixture;
the S3 store is built from the standard AWS configuration (`aws_env`), so these
tests also prove that AWS_ENDPOINT_URL reaches botocore.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from botocore.exceptions import ClientError

from archiver.errors import (
    AccessDeniedError,
    ConfigError,
    EndpointError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    UnsafeKeyError,
)
from archiver.local.moto_server import MOTO_CREDENTIALS, moto_session, running_moto_process, upload_tree
from archiver.storage import localfs, s3
from archiver.storage.localfs import LocalStore
from archiver.storage.location import parse_s3_url
from archiver.storage.s3 import S3Store
from archiver.storage.store import ListPage, ObjectStore
from tests.functional.conftest import MOTO_PAGE_SIZE

T = TypeVar("T")
MIB = 1024 * 1024
MULTIPART_THRESHOLD = 6 * MIB
PART_SIZE = 5 * MIB  # S3's (and moto's) smallest allowed part


def run(store: ObjectStore, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run one scenario on a fresh event loop and close the store after it."""

    async def main() -> T:
        try:
            return await scenario()
        finally:
            await store.close()

    return asyncio.run(main())


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def pages_for(entries: int) -> int:
    return max(1, -(-entries // MOTO_PAGE_SIZE))


async def collect(
    store: ObjectStore, prefix: str, delimiter: str | None = None, start_after: str | None = None
) -> list[ListPage]:
    return [page async for page in store.list_pages(prefix, delimiter=delimiter, start_after=start_after)]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty store: a folder, or a prefix in a fresh moto bucket; both list MOTO_PAGE_SIZE a page."""
    if request.param == "local":
        root = tmp_path / "root"
        root.mkdir()
        return LocalStore(root, page_size=MOTO_PAGE_SIZE)
    request.getfixturevalue("aws_env")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket, "root/", multipart_threshold=MULTIPART_THRESHOLD, part_size=PART_SIZE)


# -- both stores ---------------------------------------------------------------


def test_put_then_get_returns_the_body_and_its_etag(store: ObjectStore) -> None:
    # GIVEN a body written to a nested key
    body = b'{"job_id": "98765"}\n'

    async def scenario() -> None:
        etag = await store.put("jobs/2024/a.json", body)

        # WHEN it is read back, inspected and listed
        fetched = await store.get("jobs/2024/a.json")
        info = await store.head("jobs/2024/a.json")
        (page,) = await collect(store, "jobs/")

        # THEN every view agrees on the version (on S3, the MD5 of the body of a single-part upload)
        if isinstance(store, S3Store):
            assert etag == md5(body)
        assert (fetched.key, fetched.etag, fetched.body) == ("jobs/2024/a.json", etag, body)
        assert info is not None and (info.key, info.size, info.etag) == ("jobs/2024/a.json", len(body), etag)
        assert [(o.key, o.size, o.etag) for o in page.objects] == [("jobs/2024/a.json", len(body), etag)]
        assert page.objects[0].last_modified_us is not None and page.objects[0].last_modified_us > 0
        assert (store.counts.put, store.counts.get, store.counts.head, store.counts.list) == (1, 1, 1, 1)
        assert (store.counts.bytes_written, store.counts.bytes_read) == (len(body), len(body))

    run(store, scenario)


def test_get_of_a_missing_key_is_not_found_and_head_is_none(store: ObjectStore) -> None:
    # GIVEN an empty store
    async def scenario() -> None:
        # WHEN a key that was never written is read
        with pytest.raises(NotFoundError) as raised:
            await store.get("no/such.json")

        # THEN the error names the key, and head says None
        assert "no/such.json" in str(raised.value)
        assert not raised.value.retryable
        assert await store.head("no/such.json") is None

    run(store, scenario)


LAYOUT_KEYS = [
    "top.json",
    "a-b.json",
    "a/x.json",
    "a/y/z.json",
    "a0.json",
    *[f"data/2024/01/{day:02}.json" for day in range(1, 13)],
    "data/2024/02/01.json",
    "data/2025/01/01.json",
]


def test_listing_without_delimiter_returns_every_key_in_order_across_pages(store: ObjectStore) -> None:
    # GIVEN keys whose order depends on '-' < '/' < '0', more than one page's worth
    async def scenario() -> None:
        for key in LAYOUT_KEYS:
            await store.put(key, key.encode())
        before = store.counts.list

        # WHEN everything is listed, then a folder, then a partial name
        everything = await collect(store, "")
        after_everything = store.counts.list
        january = await collect(store, "data/2024/01/")
        partial = await collect(store, "data/202")

        # THEN keys come in S3 order, pages hold at most the page size, one request per page
        keys = [o.key for page in everything for o in page.objects]
        assert keys == sorted(LAYOUT_KEYS)
        assert keys.index("a-b.json") < keys.index("a/x.json") < keys.index("a0.json")
        assert len(everything) == pages_for(len(LAYOUT_KEYS))
        assert all(len(page.objects) <= MOTO_PAGE_SIZE for page in everything)
        assert all(not page.prefixes for page in everything)
        assert after_everything - before == len(everything)
        # AND only the last page of each listing says it is the last
        for pages in (everything, january, partial):
            assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
        assert [o.key for page in january for o in page.objects] == sorted(LAYOUT_KEYS[5:17])
        assert len(january) == pages_for(12)
        assert len([o for page in partial for o in page.objects]) == 14
        assert store.counts.list - before == len(everything) + len(january) + len(partial)

    run(store, scenario)


def test_listing_with_delimiter_returns_files_and_folders_across_pages(store: ObjectStore) -> None:
    # GIVEN a folder with 5 files and 5 sub-folders (10 entries: two pages)
    keys = [f"mix/f{i}.json" for i in range(5)] + [f"mix/d{i}/deep/x.json" for i in range(5)]

    async def scenario() -> None:
        for key in keys:
            await store.put(key, b"{}")
        before = store.counts.list

        # WHEN it is listed with '/' as delimiter
        pages = await collect(store, "mix/", delimiter="/")
        top = await collect(store, "", delimiter="/")
        partial = await collect(store, "mix/d", delimiter="/")

        # THEN files are objects, sub-folders are common prefixes, entries count toward the page size
        objects = [o.key for page in pages for o in page.objects]
        prefixes = [p for page in pages for p in page.prefixes]
        assert objects == [f"mix/f{i}.json" for i in range(5)]
        assert prefixes == [f"mix/d{i}/" for i in range(5)]
        assert len(pages) == pages_for(10)
        assert all(len(page.objects) + len(page.prefixes) <= MOTO_PAGE_SIZE for page in pages)
        assert [p for page in top for p in page.prefixes] == ["mix/"]
        assert [o for page in top for o in page.objects] == []
        assert [p for page in partial for p in page.prefixes] == [f"mix/d{i}/" for i in range(5)]
        assert store.counts.list - before == len(pages) + len(top) + len(partial)

    run(store, scenario)


def test_listing_starts_after_a_given_key(store: ObjectStore) -> None:
    # GIVEN the layout keys
    async def scenario() -> None:
        for key in LAYOUT_KEYS:
            await store.put(key, key.encode())

        # WHEN listings start after a key inside a folder, after a folder, and after a day
        flat = await collect(store, "", start_after="a/x.json")
        top = await collect(store, "", delimiter="/", start_after="a/")
        days = await collect(store, "data/2024/", delimiter="/", start_after="data/2024/01~")

        # THEN only what sorts after the marker comes back, across pages where needed
        assert [o.key for page in flat for o in page.objects] == sorted(
            k for k in LAYOUT_KEYS if k > "a/x.json"
        )
        assert len(flat) == pages_for(len([k for k in LAYOUT_KEYS if k > "a/x.json"]))
        assert [o.key for page in top for o in page.objects] == ["a0.json", "top.json"]
        assert [p for page in top for p in page.prefixes] == ["data/"]
        assert [p for page in days for p in page.prefixes] == ["data/2024/02/"]

    run(store, scenario)


def test_listing_an_empty_prefix_is_one_empty_page(store: ObjectStore) -> None:
    # GIVEN an empty store
    async def scenario() -> None:
        # WHEN a prefix with nothing under it is listed
        pages = await collect(store, "nothing/here/", delimiter="/")

        # THEN there is one request and one empty page, the last
        assert pages == [ListPage()] and pages[0].last
        assert store.counts.list == 1

    run(store, scenario)


def test_if_none_match_refuses_to_overwrite(store: ObjectStore) -> None:
    # GIVEN an existing key
    async def scenario() -> None:
        first = await store.put("manifest.json", b"v1", if_none_match=True)

        # WHEN it is written again with if_none_match
        with pytest.raises(PreconditionFailedError) as raised:
            await store.put("manifest.json", b"v2", if_none_match=True)

        # THEN the write loses, says so retryably, and the old version stays
        assert raised.value.retryable
        assert "manifest.json" in str(raised.value)
        fetched = await store.get("manifest.json")
        assert (fetched.body, fetched.etag) == (b"v1", first)

    run(store, scenario)


def test_if_match_succeeds_only_with_the_current_etag(store: ObjectStore) -> None:
    # GIVEN a key written twice, so its first ETag is stale
    async def scenario() -> None:
        stale = await store.put("manifest.json", b"v1")
        current = await store.put("manifest.json", b"v2-longer")

        # WHEN it is written with the stale ETag, then with the current one
        with pytest.raises(PreconditionFailedError):
            await store.put("manifest.json", b"v3", if_match=stale)
        newest = await store.put("manifest.json", b"v3", if_match=current)

        # THEN only the second write happened, and If-Match on a missing key loses too
        fetched = await store.get("manifest.json")
        assert (fetched.body, fetched.etag) == (b"v3", newest)
        with pytest.raises(PreconditionFailedError):
            await store.put("gone.json", b"x", if_match=newest)

    run(store, scenario)


def test_concurrent_if_none_match_writers_have_exactly_one_winner(store: ObjectStore) -> None:
    # GIVEN twelve writers racing to create the same key
    bodies = [f"writer {i}".encode() for i in range(12)]

    async def scenario() -> None:
        # WHEN they all write at once with if_none_match
        results = await asyncio.gather(
            *(store.put("partition/manifest.json", body, if_none_match=True) for body in bodies),
            return_exceptions=True,
        )

        # THEN exactly one wins, the rest lose cleanly, and the key holds the winner's body
        winners = [i for i, result in enumerate(results) if isinstance(result, str)]
        losers = [result for result in results if isinstance(result, PreconditionFailedError)]
        assert len(winners) == 1 and len(losers) == len(bodies) - 1
        fetched = await store.get("partition/manifest.json")
        assert fetched.body == bodies[winners[0]]
        assert fetched.etag == results[winners[0]]

    run(store, scenario)


def test_concurrent_if_match_writers_have_exactly_one_winner(store: ObjectStore) -> None:
    # GIVEN a manifest every writer read at the same version
    async def scenario() -> None:
        base = await store.put("partition/manifest.json", b"base")

        # WHEN they all replace it at once, conditional on that version
        results = await asyncio.gather(
            *(store.put("partition/manifest.json", f"next {i}".encode(), if_match=base) for i in range(12)),
            return_exceptions=True,
        )

        # THEN exactly one replaces it
        assert sum(isinstance(result, str) for result in results) == 1
        assert sum(isinstance(result, PreconditionFailedError) for result in results) == 11

    run(store, scenario)


def test_put_file_uploads_small_and_multipart_files(store: ObjectStore, tmp_path: Path) -> None:
    # GIVEN a small file and one above the multipart threshold (three 5 MiB parts on S3)
    small = tmp_path / "small.parquet"
    small.write_bytes(b"PAR1" * 100)
    large = tmp_path / "large.parquet"
    large_body = os.urandom(2 * PART_SIZE + 123_456)
    large.write_bytes(large_body)

    async def scenario() -> None:
        # WHEN both are uploaded
        small_etag = await store.put_file("t/small.parquet", small)
        puts_before = store.counts.put
        large_etag = await store.put_file("t/large.parquet", large)
        large_puts = store.counts.put - puts_before

        # THEN both read back whole, with the ETag the upload returned, in every view
        if isinstance(store, S3Store):
            assert small_etag == md5(small.read_bytes())
        fetched = await store.get("t/large.parquet")
        assert fetched.body == large_body and fetched.etag == large_etag
        info = await store.head("t/large.parquet")
        assert info is not None and (info.size, info.etag) == (len(large_body), large_etag)
        listed = {o.key: o.etag for page in await collect(store, "t/") for o in page.objects}
        assert listed == {"t/large.parquet": large_etag, "t/small.parquet": small_etag}
        if isinstance(store, S3Store):
            # create + 3 parts + complete, each counted; S3 multipart ETags end in "-<parts>"
            assert large_puts == 5 and large_etag.endswith("-3")
        else:
            assert large_puts == 1
        assert store.counts.bytes_written == small.stat().st_size + len(large_body)

    run(store, scenario)


def test_get_file_streams_an_object_of_several_chunks_into_a_file(store: ObjectStore, tmp_path: Path) -> None:
    # GIVEN an object larger than one streaming chunk, written in one put
    body = os.urandom(2 * s3.STREAM_CHUNK_BYTES + 12_345)

    async def scenario() -> None:
        etag = await store.put("t/data.parquet", body)
        reads = store.counts.get
        # WHEN it is streamed into a local file (as a copy-on-write of a committed file is)
        target = tmp_path / "copy.parquet"
        got = await store.get_file("t/data.parquet", target)
        # THEN the file holds the whole body, with the version's ETag, in one counted GET
        assert target.read_bytes() == body
        assert got == etag
        assert store.counts.get - reads == 1
        # AND a missing key is NotFoundError
        with pytest.raises(NotFoundError):
            await store.get_file("t/missing.parquet", tmp_path / "missing.parquet")

    run(store, scenario)


def test_get_file_streams_an_object_into_a_local_file(store: ObjectStore, tmp_path: Path) -> None:
    # GIVEN an object of a few chunks (the engine streams committed Parquet files it rewrites)
    body = os.urandom(3 * MIB + 4321)

    async def scenario() -> None:
        etag = await store.put("jobs/date=2024-08-20/part.parquet", body)
        reads_before = store.counts.bytes_read

        # WHEN it is fetched into a local file
        target = tmp_path / "copy.parquet"
        got = await store.get_file("jobs/date=2024-08-20/part.parquet", target)

        # THEN the file holds the body, the ETag is the object's, and the bytes are counted once
        assert target.read_bytes() == body
        assert got == etag
        assert store.counts.bytes_read - reads_before == len(body)
        with pytest.raises(NotFoundError):
            await store.get_file("jobs/no-such.parquet", tmp_path / "missing.parquet")

    run(store, scenario)


def test_delete_removes_keys_and_ignores_missing_ones(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three keys in a folder, and batches of two keys per delete request
    monkeypatch.setattr(s3, "DELETE_BATCH", 2)
    monkeypatch.setattr(localfs, "DELETE_BATCH", 2)
    keys = ["old/date=2024-01-01/a.parquet", "old/date=2024-01-01/b.parquet", "old/c.parquet"]

    async def scenario() -> None:
        for key in keys:
            await store.put(key, b"x")
        await store.put("keep.json", b"y")

        # WHEN they are deleted together with two keys that never existed
        await store.delete([*keys, "old/missing.parquet", "never/there.json"])
        await store.delete([])

        # THEN the keys are gone, the folder too (S3 has no empty folders), nothing else changed
        assert store.counts.delete == 3
        for key in keys:
            assert await store.head(key) is None
        top = await collect(store, "", delimiter="/")
        assert [o.key for page in top for o in page.objects] == ["keep.json"]
        assert [p for page in top for p in page.prefixes] == []

    run(store, scenario)


# -- configuration and failures ------------------------------------------------


def test_missing_bucket_is_not_found_with_a_clear_message(aws_env: str) -> None:
    # GIVEN a store on a bucket that does not exist
    store = S3Store("no-such-bucket-for-archiver")

    async def scenario() -> None:
        # WHEN it is listed, read and written
        for attempt in (collect(store, ""), store.get("a.json"), store.put("a.json", b"x")):
            with pytest.raises(NotFoundError) as raised:
                await attempt

            # THEN each says, in one line, that the bucket does not exist
            assert str(raised.value) == "bucket no-such-bucket-for-archiver does not exist"
            assert not raised.value.retryable

    run(store, scenario)


def test_missing_local_folder_is_not_found(tmp_path: Path) -> None:
    # GIVEN a store on a folder that does not exist
    store = LocalStore(tmp_path / "absent")

    async def scenario() -> None:
        # WHEN it is listed or read
        with pytest.raises(NotFoundError, match="does not exist"):
            await collect(store, "")
        with pytest.raises(NotFoundError):
            await store.get("a.json")

    run(store, scenario)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_endpoint_fails_fast_with_endpoint_error() -> None:
    # GIVEN a store whose endpoint is a closed port, with retries turned down
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = S3Store(
        "some-bucket", credentials=MOTO_CREDENTIALS, endpoint_url=endpoint, max_attempts=1, connect_timeout=2
    )

    async def scenario() -> None:
        # WHEN it is listed
        started = time.monotonic()
        with pytest.raises(EndpointError) as raised:
            await collect(store, "")

        # THEN the error is quick, retryable, one line, and names the endpoint and the reason
        assert time.monotonic() - started < 5
        assert raised.value.retryable
        assert str(raised.value) == f"cannot reach the storage endpoint {endpoint}: connection refused"

    run(store, scenario)


def test_aws_endpoint_url_is_honoured_without_any_flag(aws_env: str, s3_bucket: str) -> None:
    # GIVEN only the standard AWS environment pointing at moto
    async def scenario() -> None:
        # WHEN a store is opened from an s3:// URL with no endpoint argument
        store = await S3Store.from_url(f"s3://{s3_bucket}/p")
        try:
            await store.put("k.json", b"1")
            (page,) = await collect(store, "")
        finally:
            await store.close()

        # THEN it talked to moto
        assert store.endpoint == aws_env
        assert [o.key for o in page.objects] == ["k.json"]

    asyncio.run(scenario())


def test_moto_honours_conditional_put_object(moto_endpoint: str, s3_bucket: str) -> None:
    # GIVEN a raw aioboto3 client on moto and an existing object
    async def scenario() -> None:
        async with moto_session().client("s3", endpoint_url=moto_endpoint) as client:
            first = await client.put_object(Bucket=s3_bucket, Key="k", Body=b"1")

            # WHEN PutObject is sent with If-None-Match: * and with a wrong If-Match
            # THEN moto answers 412 PreconditionFailed to both, and accepts the right If-Match
            for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"0123456789abcdef0123456789abcdef"'}):
                with pytest.raises(ClientError) as raised:
                    await client.put_object(Bucket=s3_bucket, Key="k", Body=b"2", **condition)
                assert raised.value.response["Error"]["Code"] == "PreconditionFailed"
                assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
            await client.put_object(Bucket=s3_bucket, Key="k", Body=b"3", IfMatch=first["ETag"])
            body = await (await client.get_object(Bucket=s3_bucket, Key="k"))["Body"].read()
            assert body == b"3"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("code", "status", "expected", "retryable"),
    [
        ("AccessDenied", 403, AccessDeniedError, False),
        ("InvalidAccessKeyId", 403, AccessDeniedError, False),
        ("SignatureDoesNotMatch", 403, AccessDeniedError, False),
        ("NoSuchBucket", 404, NotFoundError, False),
        ("NoSuchKey", 404, NotFoundError, False),
        ("PreconditionFailed", 412, PreconditionFailedError, True),
        ("ConditionalRequestConflict", 409, PreconditionFailedError, True),
        ("SlowDown", 503, StorageError, True),
        ("InternalError", 500, StorageError, True),
        ("InvalidArgument", 400, StorageError, False),
    ],
)
def test_s3_errors_map_to_the_archiver_hierarchy(
    code: str, status: int, expected: type[StorageError], retryable: bool
) -> None:
    # GIVEN an S3 error answer (as left over after botocore's retries)
    error = ClientError(
        {"Error": {"Code": code, "Message": "some\nmessage"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )

    # WHEN the store translates it
    mapped = S3Store("my-bucket", "pre")._error(error, "read", "a/b.json")

    # THEN it is the right kind, says whether to retry, and is one line naming bucket or key
    assert type(mapped) is expected
    assert mapped.retryable is retryable
    assert "\n" not in str(mapped)
    assert "my-bucket" in str(mapped)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://my.bucket-1/logs", "my.bucket-1", "logs/"),
        ("S3://bucket/a/b/", "bucket", "a/b/"),
    ],
)
def test_parse_s3_url_splits_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    # GIVEN / WHEN / THEN the prefix is '' or ends with '/'
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    "url", ["bucket/prefix", "s3://", "s3:///prefix", "http://bucket/x", "s3://B_d/x", "s3://ab"]
)
def test_parse_s3_url_refuses_bad_urls(url: str) -> None:
    # GIVEN a malformed URL / WHEN parsed / THEN ConfigError, naming it
    with pytest.raises(ConfigError):
        parse_s3_url(url)


# -- the local folder ------------------------------------------------------------

UNSAFE_KEYS = [
    "../escape.json",
    "a/../../escape.json",
    "/etc/passwd",
    "a\\..\\b",
    "a\x00b",
    "",
    "a//b",
    "./a",
    "a/",
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_local_store_refuses_keys_that_could_escape_its_folder(key: str, tmp_path: Path) -> None:
    # GIVEN a local store inside a larger folder
    root = tmp_path / "root"
    store = LocalStore(root)

    async def scenario() -> None:
        # WHEN an unsafe key is used for anything
        for attempt in (store.put(key, b"x"), store.get(key), store.head(key), store.delete([key])):
            with pytest.raises(UnsafeKeyError):
                await attempt

    run(store, scenario)

    # THEN nothing was written anywhere
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_local_store_refuses_unsafe_list_prefixes_and_reserved_names(tmp_path: Path) -> None:
    # GIVEN a local store
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        # WHEN a listing climbs out, or a key uses the temporary-file prefix
        # THEN both are refused
        with pytest.raises(UnsafeKeyError):
            await collect(store, "../")
        with pytest.raises(UnsafeKeyError):
            await store.put("a/.archiver-tmp-1234.tmp", b"x")

    run(store, scenario)


def test_local_listing_hides_temporary_files(tmp_path: Path) -> None:
    # GIVEN a finished file and a temporary file left by a crashed writer
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "done.parquet").write_bytes(b"x")
    (tmp_path / "d" / ".archiver-0123456789abcdef.tmp").write_bytes(b"half")
    store = LocalStore(tmp_path)

    # WHEN the folder is listed
    pages = run(store, lambda: collect(store, ""))

    # THEN only the finished file shows
    assert [o.key for page in pages for o in page.objects] == ["d/done.parquet"]


def test_local_etag_changes_when_content_changes_even_at_the_same_size_and_instant(tmp_path: Path) -> None:
    # GIVEN a file rewritten at once with different content of the same size
    store = LocalStore(tmp_path)

    async def scenario() -> tuple[str, str]:
        first = await store.put("m.json", b"aaaa")
        second = await store.put("m.json", b"bbbb")
        return first, second

    first, second = run(store, scenario)

    # THEN the ETags differ (the store moves mtime forward when a write lands within one clock tick)
    assert first != second


def test_local_files_get_one_stat_etag_from_every_view(tmp_path: Path) -> None:
    # GIVEN a local store and a file, whose ETag comes from its stat, not its content
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        etag = await store.put("big.parquet", b"x" * 100)

        # WHEN it is read, inspected and listed
        fetched = await store.get("big.parquet")
        info = await store.head("big.parquet")
        (page,) = await collect(store, "")

        # THEN all agree on the same, non-MD5 ETag
        assert etag != md5(b"x" * 100)
        assert (
            fetched.etag == etag and info is not None and info.etag == etag and page.objects[0].etag == etag
        )

    run(store, scenario)


RACER = """
import asyncio, sys
from archiver.errors import PreconditionFailedError
from archiver.storage.localfs import LocalStore

root, number, etag = sys.argv[1], sys.argv[2], sys.argv[3] or None
sys.stdin.readline()  # wait for the starting signal
try:
    asyncio.run(LocalStore(root).put(
        "p/manifest.json", f"writer {number}".encode(), if_none_match=etag is None, if_match=etag
    ))
except PreconditionFailedError:
    sys.exit(3)
"""


@pytest.mark.parametrize("condition", ["if_none_match", "if_match"])
def test_local_conditional_writes_hold_across_processes(condition: str, tmp_path: Path) -> None:
    # GIVEN eight processes ready to write the same key, and its folder locked by this process
    store = LocalStore(tmp_path)
    base = run(store, lambda: store.put("p/manifest.json", b"base")) if condition == "if_match" else ""
    (tmp_path / "p").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(localfs.__file__).parents[1])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(n), base],
            stdin=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(8)
    ]
    folder = os.open(tmp_path / "p", os.O_RDONLY)
    fcntl.flock(folder, fcntl.LOCK_EX)

    # WHEN they all write conditionally, first while the folder is locked, then after
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
    time.sleep(1.0)
    waited = [writer.poll() is None for writer in writers]
    untouched = (
        (tmp_path / "p" / "manifest.json").read_bytes()
        if base
        else not (tmp_path / "p/manifest.json").exists()
    )
    os.close(folder)
    codes = sorted(writer.wait(60) for writer in writers)

    # THEN none wrote while another process held the lock, and exactly one won afterwards
    assert all(waited) and untouched in (True, b"base")
    assert codes == [0] + [3] * 7


# -- the moto helpers ------------------------------------------------------------


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)


@pytest.mark.parametrize("over_http", [False, True], ids=["direct", "http"])
def test_upload_tree_uploads_a_folder_with_relative_keys(
    over_http: bool, moto_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    # GIVEN a folder with nested files and a leftover temporary file
    files = {"a.json": b"1", "x/y/b.json": b"22", "x/c.json": b"333"}
    write_tree(tmp_path, files)
    (tmp_path / "x" / ".archiver-0000.tmp").write_bytes(b"half")

    # WHEN it is uploaded under a prefix, straight into the in-process server or over HTTP
    count = upload_tree(moto_endpoint, s3_bucket, tmp_path, "in/", over_http=over_http)

    # THEN every file is there under its relative path with its MD5 ETag, the temporary one is not
    store = S3Store(s3_bucket, "in/", credentials=MOTO_CREDENTIALS, endpoint_url=moto_endpoint)
    pages = run(store, lambda: collect(store, ""))
    assert count == 3
    assert {o.key: o.etag for page in pages for o in page.objects} == {k: md5(v) for k, v in files.items()}


def test_upload_tree_into_a_missing_bucket_is_not_found(moto_endpoint: str, tmp_path: Path) -> None:
    # GIVEN a folder and a bucket name nobody created
    write_tree(tmp_path, {"a.json": b"1"})

    # WHEN it is uploaded / THEN the bucket is reported missing, both ways
    for over_http in (False, True):
        with pytest.raises(NotFoundError, match="bucket never-created-bucket does not exist"):
            upload_tree(moto_endpoint, "never-created-bucket", tmp_path, over_http=over_http)


def test_moto_process_serves_a_preloaded_bucket_with_its_own_page_size(tmp_path: Path) -> None:
    # GIVEN moto in a child process, preloaded with a folder, listing 2 keys a page
    files = {f"d/{i}.json": str(i).encode() for i in range(5)}
    write_tree(tmp_path, files)
    with running_moto_process(max_keys=2, preload={"proc-bucket": tmp_path}) as endpoint:
        store = S3Store("proc-bucket", credentials=MOTO_CREDENTIALS, endpoint_url=endpoint)

        async def scenario() -> list[ListPage]:
            # WHEN the bucket is listed and written over HTTP
            await store.put("d/5.json", b"5")
            return await collect(store, "d/")

        pages = run(store, scenario)

    # THEN it holds the folder plus the new key, in pages of two
    assert [len(page.objects) for page in pages] == [2, 2, 2]
    assert [o.etag for page in pages for o in page.objects][:5] == [md5(body) for body in files.values()]
