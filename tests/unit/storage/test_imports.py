"""What each store needs is imported only where it is needed: S3-to-S3 runs never load the local store."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import archiver

PACKAGE = Path(archiver.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_local_store_imports_fcntl() -> None:
    # GIVEN every module of the package
    modules = sorted(PACKAGE.rglob("*.py"))

    # WHEN their imports are read
    importers = {str(path.relative_to(PACKAGE)) for path in modules if "fcntl" in imported_modules(path)}

    # THEN only the local store's publishing part imports the POSIX-only fcntl
    assert importers == {"storage/localfs_publish.py"}


def test_opening_s3_stores_never_loads_the_local_store() -> None:
    # GIVEN a fresh interpreter that loads the command line and the engine's API
    script = textwrap.dedent(
        """
        import asyncio, sys
        import archiver.cli.main, archiver.engine.api
        from archiver.storage.location import open_store

        async def main():
            for url in ("s3://source-bucket/in/", "s3://archive-bucket/out/"):
                store = await open_store(url, endpoint_url="http://127.0.0.1:9", credentials={
                    "aws_access_key_id": "k", "aws_secret_access_key": "s", "region_name": "us-east-1"})
                await store.close()

        asyncio.run(main())
        print(sorted(name for name in sys.modules if name.startswith("archiver.storage.localfs")))
        """
    )

    # WHEN it opens an S3 source and an S3 destination
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    # THEN no part of the local-folder store was imported
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
