"""Run one handler in this process, as a Lambda execution environment would: `python -m ... HANDLER EVENT`.

Prints the handler's answer as one JSON line on stdout (Powertools' logs go to stdout
too, before it); the environment configures everything, as on Lambda.

This module is the process's `__main__`, as Lambda's runtime is there, and like it
must not be imported a second time: a worker start method that re-imports the
caller's `__main__` (multiprocessing's spawn, forkserver's preload) fails loudly here
instead of quietly running it twice.
"""

from __future__ import annotations

if __name__ != "__main__":
    raise RuntimeError(f"{__file__} is a process's __main__ and was imported again (as {__name__})")

import json
import sys
from pathlib import Path

from archiver.aws import handlers
from tests.functional.aws.lambda_context import LambdaContext


def main() -> None:
    name, event_path = sys.argv[1], sys.argv[2]
    event = json.loads(Path(event_path).read_text())
    answer = getattr(handlers, name)(event, LambdaContext())
    sys.stdout.write("ANSWER " + json.dumps(answer) + "\n")


main()
