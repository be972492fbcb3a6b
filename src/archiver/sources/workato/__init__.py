"""Workato's public API: the activity audit log client, its rate limiter and retry timing."""

from __future__ import annotations

from archiver.sources.workato.client import PAGE_SIZE, ApiCounts, WorkatoApi, activity_path
from archiver.sources.workato.limiter import RateLimiter

__all__ = ["PAGE_SIZE", "ApiCounts", "RateLimiter", "WorkatoApi", "activity_path"]
