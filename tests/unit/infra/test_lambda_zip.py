"""What `make lambda-zip` puts in the Lambda package, and what it leaves out."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

INFRA = Path(__file__).resolve().parents[3] / "infra"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda_zip", INFRA / "build_lambda_zip.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyiceberg_goes_in_with_its_glue_catalog_and_without_sqlalchemy() -> None:
    # GIVEN the requirements the build installs
    wanted = builder().requirements()
    # THEN pyiceberg is in, with its version bounds and the glue extra alone (no sql-sqlite: SQLAlchemy)
    pyiceberg = [spec for spec in wanted if spec.startswith("pyiceberg")]
    assert pyiceberg == ["pyiceberg[glue]>=0.12,<0.13"]
    assert not any(spec.lower().startswith(("moto", "sqlalchemy")) for spec in wanted)


def test_code_no_function_imports_is_stripped(tmp_path: Path) -> None:
    # GIVEN an installed tree with zstandard's two backends and pyiceberg's Hive metastore client
    files = [
        "zstandard/__init__.py",
        "zstandard/backend_c.cpython-312-aarch64-linux-gnu.so",
        "zstandard/_cffi.cpython-312-aarch64-linux-gnu.so",
        "zstandard/backend_cffi.py",
        "hive_metastore/ThriftHiveMetastore.py",
        "fb303/FacebookService.py",
        "pyiceberg/catalog/glue.py",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    # WHEN the build strips it
    builder().strip(tmp_path)
    # THEN what CPython and the Glue catalog load stays, the rest is gone
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert left == [
        "pyiceberg/catalog/glue.py",
        "zstandard/__init__.py",
        "zstandard/backend_c.cpython-312-aarch64-linux-gnu.so",
    ]
