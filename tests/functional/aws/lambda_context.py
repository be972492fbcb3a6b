"""A stand-in for the Lambda context object: the fields Powertools reads, and a clock."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    """`remaining_s` counts down in real time from when the context is made (like Lambda's deadline)."""

    remaining_s: float = 900.0
    function_name: str = "archiver-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111122223333:function:archiver-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/archiver-test"
    log_stream_name: str = "2024/09/01/[$LATEST]0123456789abcdef"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.remaining_s - (time.monotonic() - self._started)) * 1000))
