"""No class or function grows past a few screenfuls: a long one is several jobs waiting for names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archiver

PACKAGE = Path(archiver.__file__).parent
MAX_LINES = 300
PARTS = sorted(path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists())


def too_long(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    found.append(f"{path.relative_to(PACKAGE)}: {node.name} has {length} lines")
    return found


@pytest.mark.parametrize("part", PARTS)
def test_no_class_or_function_is_over_300_lines(part: str) -> None:
    # GIVEN every module of one subpackage
    files = sorted((PACKAGE / part).rglob("*.py"))
    # WHEN the lengths of its classes and functions are measured
    # THEN none is over the limit
    assert too_long(files) == []


def test_top_level_modules_are_short_too() -> None:
    assert too_long(sorted(PACKAGE.glob("*.py"))) == []
