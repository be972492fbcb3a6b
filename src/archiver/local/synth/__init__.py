"""A deterministic synthetic corpus of Workato audit-log objects in the documented S3 layout.

The corpus is an independent source of truth for the archiver: every object comes
with a `Truth` that says what the archive must make of it (a job version and whether
it wins, an activity event, a quarantined object and why, or a skipped key). It
deliberately does not import the parsing modules, so tests can compare the
archiver's output against it instead of against the archiver's own reading.

Everything derives from one seeded `random.Random`; there is no wall clock and no
iteration over hash-ordered sets, so the same arguments give the same bytes in
every process.

Modules, by role: `vocabulary` (names and words), `formatting` (timestamps, JSON),
`world` (the seeded state, workspaces, recipes), `plans` (one job's plan and its
versions), `steps` (step lines), `jobs` and `activity` (documents as each stream
writes them), `malformed` (quarantined and skipped objects), `truth` (what the
archive must hold) and `corpus` (the order of a corpus, writing it to disk).
"""

from __future__ import annotations

from archiver.local.synth.corpus import generate, synth_command, write_corpus
from archiver.local.synth.jobs import BIG_OBJECT_BYTES, NEW_FORMAT_DROPPED_CONTEXT
from archiver.local.synth.plans import LINES_DROPPED, NON_TERMINAL_STATUSES, TERMINAL_STATUSES
from archiver.local.synth.truth import (
    ACTIVITY_API,
    ACTIVITY_EVENT,
    ENVELOPE_STREAM,
    JOB_DETAILS,
    JOB_HISTORY,
    JOB_STATUS,
    JOB_SUMMARY,
    KIND_ACTIVITY,
    KIND_JOB,
    KIND_QUARANTINE,
    KIND_SKIP,
    LINE_ENVELOPES,
    PROJECT_DEPLOYMENT,
    QUARANTINE_REASONS,
    USER_ACTIVITY,
    CorpusSummary,
    ExpectedArchive,
    SynthObject,
    Truth,
    expected_archive,
)
from archiver.local.synth.world import FORMAT_CHANGE

__all__ = [
    "ACTIVITY_API",
    "ACTIVITY_EVENT",
    "BIG_OBJECT_BYTES",
    "ENVELOPE_STREAM",
    "FORMAT_CHANGE",
    "JOB_DETAILS",
    "JOB_HISTORY",
    "JOB_STATUS",
    "JOB_SUMMARY",
    "KIND_ACTIVITY",
    "KIND_JOB",
    "KIND_QUARANTINE",
    "KIND_SKIP",
    "LINES_DROPPED",
    "LINE_ENVELOPES",
    "NEW_FORMAT_DROPPED_CONTEXT",
    "NON_TERMINAL_STATUSES",
    "PROJECT_DEPLOYMENT",
    "QUARANTINE_REASONS",
    "TERMINAL_STATUSES",
    "USER_ACTIVITY",
    "CorpusSummary",
    "ExpectedArchive",
    "SynthObject",
    "Truth",
    "expected_archive",
    "generate",
    "synth_command",
    "write_corpus",
]
