"""Publishing the archive as Apache Iceberg tables whose current snapshot is the ledger's live files.

`mode` is light (run by every compact); the rest loads pyiceberg and is used by `publish` only.
"""
