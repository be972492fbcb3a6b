"""archiver: Workato audit-log streams in S3 -> partitioned, exactly-once Parquet."""

from __future__ import annotations

__version__ = "0.1.0"
