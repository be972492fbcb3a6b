"""Build dist/lambda.zip: the archiver and its `[aws]` extra for the arm64 Python 3.12 Lambda runtime.

    python infra/build_lambda_zip.py [--out dist/lambda.zip] [--python-version 3.12] [--tree DIR]

`--tree DIR` writes the same files into a folder instead of a zip (infra/Dockerfile uses it).

Wheels come from the package index for manylinux2014 (and 2_28) aarch64 / CPython 3.12 with
`--only-binary=:all:`, so nothing is compiled here and the machine building the zip
can be x86. What goes in, and why:

- the core install (`[project] dependencies`) plus the `[aws]` extra, minus moto
  (a test and replay server, far too big for a function and never imported by it);
- pyiceberg with its `glue` extra only: `sql-sqlite` (SQLAlchemy and greenlet) serves the
  embedded SQLite catalog of a local DEST, which a function never opens (it is imported only
  there), so Lambda gets pyiceberg's Glue catalog and its core;
- boto3/botocore ARE bundled, not left to the runtime: aiobotocore pins botocore to a
  narrow range (2.25.1 wants >=1.40.46,<1.40.62) because it patches botocore's
  internals, and the runtime's own botocore is whatever AWS last shipped, so leaning on
  it would break on a runtime update. /var/task comes first on sys.path, so the bundled
  copy is the one imported;
- stripped: __pycache__ and .pyc, test suites, C/C++ headers and Cython sources,
  console scripts, and code no function imports (STRIP_PATHS: zstandard's cffi backend,
  which CPython never loads, and the Hive metastore client of pyiceberg's Hive catalog).
  dist-info folders stay (importlib.metadata reads them).

The build fails when the unzipped size exceeds Lambda's 250 MB limit, or when
pyarrow's native library has no zstd codec (the archive is zstd-compressed Parquet;
some widely used prebuilt data layers drop it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
"""The python3.12 runtime is Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels run there too;
newer pyarrow releases ship aarch64 wheels only for 2_28, and without it pip falls back to an old pyarrow."""
EXCLUDED = {"moto"}
"""Distributions never shipped to Lambda, even while the core dependencies still list them."""
LAMBDA_EXTRAS = {"pyiceberg": "glue"}
"""The extras of a dependency Lambda needs, in place of those the core install asks for."""
STRIP_DIRS = {"__pycache__", "tests", "test", "include", "benchmarks"}
STRIP_SUFFIXES = {".pyc", ".pyo", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cc", ".cpp"}
STRIP_PATHS = ("zstandard/_cffi.*", "zstandard/backend_cffi.py", "hive_metastore", "fb303")
"""Globs (from the package root) of code no function imports: zstandard loads its C backend on
CPython; hive_metastore and fb303 serve pyiceberg's Hive catalog only."""
ZSTD_MARKER = b"ZSTD_compressStream2"


def requirements() -> list[str]:
    """The core dependencies plus the [aws] extra, without EXCLUDED."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["aws"]]
    return [_lambda_extras(spec) for spec in wanted if _name(spec) not in EXCLUDED]


def _lambda_extras(spec: str) -> str:
    """`spec` with only the extras Lambda needs (LAMBDA_EXTRAS), its version bounds kept."""
    name = _name(spec)
    if name not in LAMBDA_EXTRAS:
        return spec
    return re.sub(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?", f"{name}[{LAMBDA_EXTRAS[name]}]", spec)


def _name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", spec)
    assert match, spec
    return match.group(0).lower().replace("_", "-")


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build(out: Path, python_version: str, tree: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="lambda-zip-") as work:
        wheels, target = Path(work, "wheels"), Path(work, "package")
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT))
        platform = [
            *(option for name in PLATFORMS for option in ("--platform", name)),
            "--implementation", "cp",
            "--python-version", python_version,
            "--only-binary=:all:",
        ]  # fmt: skip
        pip("install", "--quiet", "--target", str(target), *platform, *requirements())
        project_wheel = next(wheels.glob("archiver-*.whl"))
        pip("install", "--quiet", "--no-deps", "--target", str(target), *platform, str(project_wheel))
        strip(target)
        check_zstd(target)
        unzipped = tree_size(target)
        if unzipped > LAMBDA_UNZIPPED_LIMIT:
            raise SystemExit(
                f"unzipped package is {unzipped / 2**20:.1f} MiB, over Lambda's 250 MB limit: "
                "use the container image (infra/Dockerfile)"
            )
        if tree is not None:
            shutil.copytree(target, tree, symlinks=True, dirs_exist_ok=True)
            print(f"{tree}: {unzipped / 2**20:.1f} MiB")
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        write_zip(target, out)
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped")
    print("largest packages (unzipped):")
    for name, size in largest(target_sizes):
        print(f"  {name:<28} {size / 2**20:7.1f} MiB")


target_sizes: dict[str, int] = {}


def strip(target: Path) -> None:
    shutil.rmtree(target / "bin", ignore_errors=True)
    for pattern in STRIP_PATHS:
        for path in target.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    for folder, dirs, files in os.walk(target, topdown=True):
        for name in [d for d in dirs if d in STRIP_DIRS]:
            shutil.rmtree(Path(folder, name))
            dirs.remove(name)
        for name in files:
            if Path(name).suffix in STRIP_SUFFIXES:
                Path(folder, name).unlink()
    for entry in target.iterdir():
        target_sizes[entry.name] = tree_size(entry) if entry.is_dir() else entry.stat().st_size


def check_zstd(target: Path) -> None:
    """pyarrow's bundled libarrow must carry zstd (we cannot import aarch64 code here, so look inside)."""
    libraries = sorted((target / "pyarrow").glob("libarrow.so*"))
    if not libraries:
        raise SystemExit("pyarrow's libarrow.so is missing from the package")
    if not any(ZSTD_MARKER in path.read_bytes() for path in libraries):
        raise SystemExit(f"{libraries[0].name} has no zstd codec; the archive's Parquet files need it")
    print(f"zstd codec present in pyarrow/{libraries[0].name}")


def tree_size(root: Path) -> int:
    if root.is_file():
        return root.stat().st_size
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def largest(sizes: dict[str, int], count: int = 8) -> list[tuple[str, int]]:
    return sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:count]


def write_zip(target: Path, out: Path) -> None:
    """A deterministic zip: sorted entries, fixed timestamps, symlinks stored as the files they point to."""
    out.unlink(missing_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(target.rglob("*")):
            if path.is_dir():
                continue
            info = zipfile.ZipInfo(str(path.relative_to(target)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "lambda.zip")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--tree", type=Path, help="write the package into this folder instead of a zip")
    args = parser.parse_args()
    build(args.out, args.python_version, args.tree)


if __name__ == "__main__":
    main()
