"""Every library the code imports is declared, in the extra of the part that imports it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import archiver

PACKAGE = Path(archiver.__file__).parent
PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    """Normalised distribution names of requirement strings ("moto[server]>=5" -> "moto")."""
    return {re.split(r"[\s\[<>=!~;]", item, maxsplit=1)[0].lower().replace("_", "-") for item in requirements}


def imported(paths: Iterable[Path]) -> set[str]:
    """Top-level names of the non-stdlib, non-archiver modules these files import."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "archiver"}


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions that provide these top-level modules."""
    providers = importlib.metadata.packages_distributions()
    return {dist.lower().replace("_", "-") for module in modules for dist in providers.get(module, [module])}


def test_the_plain_install_declares_everything_but_local_and_aws_use() -> None:
    # GIVEN the modules compact, verify, plan and pull-activity use: all but local/ and aws/
    parts = [PACKAGE / "local", PACKAGE / "aws"]
    files = [path for path in PACKAGE.rglob("*.py") if not any(part in path.parents for part in parts)]
    # WHEN the distributions they import are compared with the plain install's dependencies
    missing = distributions(imported(files)) - names(PROJECT["dependencies"])
    # THEN every one is declared
    assert missing == set()


def test_local_tools_need_only_the_local_extra_on_top() -> None:
    # GIVEN what local/ imports
    used = distributions(imported((PACKAGE / "local").rglob("*.py")))
    # WHEN it is compared with the plain install plus [local]
    # THEN nothing is missing
    assert used - names(PROJECT["dependencies"]) - names(EXTRAS["local"]) == set()


def test_moto_comes_only_with_the_local_extra_and_dev_has_everything() -> None:
    # GIVEN the dependencies and extras
    # WHEN they are read
    # THEN the plain install has no moto; [local] brings its server, [aws] Powertools,
    # and [dev] both and the tools
    assert "moto" not in names(PROJECT["dependencies"])
    assert any(requirement.startswith("moto[server]") for requirement in EXTRAS["local"])
    assert "aws-lambda-powertools" in names(EXTRAS["aws"])
    assert "archiver[local,aws]" in EXTRAS["dev"]
    tools = {"pytest", "pytest-xdist", "duckdb", "ruff", "mypy", "import-linter", "cfn-lint"}
    assert tools <= names(EXTRAS["dev"])


def test_the_lock_pins_every_dev_dependency_with_hashes() -> None:
    # GIVEN the lock file make installs from
    lock = (Path(__file__).parents[2] / "requirements" / "dev.lock").read_text(encoding="utf-8")
    pinned = {
        line.split("==")[0].lower() for line in lock.splitlines() if "==" in line and not line[0].isspace()
    }
    # WHEN it is compared with the declared dependencies
    declared = names(PROJECT["dependencies"]) | names(EXTRAS["local"]) | names(EXTRAS["aws"])
    declared |= names(EXTRAS["dev"]) - {"archiver"}
    # THEN every one is pinned, with hashes, and no registry is named
    assert declared - pinned == set()
    assert lock.count("--hash=sha256:") >= len(pinned)
    assert "://" not in lock
