"""The engine: plans units, lists, fetches, parses, resolves versions, writes Parquet and commits.

Entry points use only what `archiver.engine.api` exports.
"""
