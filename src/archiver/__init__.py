"""archiver: Workato audit-log streams in S3 -> partitioned, exactly-once Parquet."""

from __future__ import annotations

__version__ = "0.1.0"

import logging as _logging

# Library code never prints: without a handler configured by the application, records go nowhere.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
