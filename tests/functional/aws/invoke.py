"""Run one handler in this process, as a Lambda execution environment would: `python -m ... HANDLER EVENT`.

Prints the handler's answer as one JSON line on stdout (Powertools' logs go to stdout
too, before it); the environment configures everything, as on Lambda.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    main()
