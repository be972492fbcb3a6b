"""The units of one root as a tree, and which unit a source key belongs to.

A unit that is not sealed takes every job folder in its key range. A sealed unit
keeps the folders it held when it was sealed (late versions of those jobs still
go to it, so a job's versions always meet in one unit) and hands every other
folder to the child whose range contains it. Sealing writes the children into the
unit's head with one conditional write, so the split is decided once and every
worker sees the same one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from archiver.engine.ledger import Child, Head
from archiver.engine.units import child_unit


@dataclass(slots=True)
class UnitState:
    """A unit's committed head and its ETag (None while nothing is committed)."""

    head: Head
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Leaf:
    """A unit that takes new folders, and its key range."""

    unit: str
    lo: str | None
    hi: str | None


@dataclass(slots=True)
class UnitTree:
    """Every known unit of a root: heads, and the folders each sealed unit keeps."""

    root: str
    states: dict[str, UnitState] = field(default_factory=dict)
    held: dict[str, frozenset[str]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    """Data files the heads name that are gone from the archive or damaged in it: their rows are rebuilt."""

    def state(self, unit: str) -> UnitState:
        """The unit's state; a unit with nothing committed yet gets an empty head with its range."""
        known = self.states.get(unit)
        if known is not None:
            return known
        lo, hi = self.range_of(unit)
        state = UnitState(Head(unit=unit, lo=lo, hi=hi))
        self.states[unit] = state
        return state

    def range_of(self, unit: str) -> tuple[str | None, str | None]:
        if unit == self.root:
            return None, None
        parent_name, _, index_text = unit.rpartition(".")
        parent = self.state(parent_name).head
        index = int(index_text)
        if index >= len(parent.children):
            raise KeyError(f"{unit} is not a child of {parent_name}")
        lo = parent.children[index].lo or None
        hi = parent.children[index + 1].lo if index + 1 < len(parent.children) else parent.hi
        return lo, hi

    def route(self, folder: str) -> str:
        """The unit that holds, or will hold, a job folder."""
        unit = self.root
        while True:
            head = self.state(unit).head
            if not head.sealed or folder in self.held.get(unit, frozenset()):
                return unit
            unit = child_for(head, folder)

    def leaves(self, under: str | None = None) -> list[Leaf]:
        """The unsealed units under `under` (default: the root), in key order."""
        found: list[Leaf] = []
        pending = [under or self.root]
        while pending:
            unit = pending.pop()
            head = self.state(unit).head
            if head.sealed:
                pending.extend(reversed([child.unit for child in head.children]))
            else:
                found.append(Leaf(unit, head.lo, head.hi))
        return found

    def ancestors(self, unit: str) -> list[str]:
        """The units above `unit`, nearest first."""
        names: list[str] = []
        while "." in unit:
            unit = unit.rpartition(".")[0]
            names.append(unit)
        return names


def child_for(head: Head, folder: str) -> str:
    """The child of a sealed head whose range contains `folder`."""
    los = [child.lo for child in head.children]
    index = max(bisect.bisect_right(los, folder) - 1, 0)
    return head.children[index].unit


def sealed(head: Head, boundaries: Sequence[str]) -> Head:
    """A copy of `head` sealed with children split at `boundaries` (folders inside its range)."""
    inside = sorted({b for b in boundaries if head.contains(b) and b != (head.lo or "")})
    los = [head.lo or "", *inside]
    children = [Child(child_unit(head.unit, i), lo) for i, lo in enumerate(los)]
    return Head(
        unit=head.unit,
        generation=head.generation,
        lo=head.lo,
        hi=head.hi,
        children=children,
        segments=list(head.segments),
        files=list(head.files),
        retired=list(head.retired),
        lineage=list(head.lineage),
    )


class BoundaryPicker:
    """Picks split points as folders stream by in key order: one every `chunk` objects, at a folder start."""

    def __init__(self, chunk: int) -> None:
        self.chunk = max(1, chunk)
        self.boundaries: list[str] = []
        self._since = 0
        self._last: str | None = None

    def add(self, folder: str) -> None:
        if folder != self._last and self._since >= self.chunk:
            self.boundaries.append(folder)
            self._since = 0
        self._since += 1
        self._last = folder


def quantile_boundaries(folders: Iterable[str], parts: int) -> list[str]:
    """`parts - 1` split points that cut sorted distinct folders into nearly equal parts."""
    ordered = sorted(set(folders))
    if parts < 2 or len(ordered) < parts:
        return ordered[1:] if 1 < len(ordered) <= parts else []
    step = len(ordered) / parts
    return [ordered[round(step * i)] for i in range(1, parts)]
