"""Storage layer: bytes on disk and the rules that make them crash-safe.

Nothing here knows about schemas, vectors or filters. The engine hands this layer opaque
payloads (log records, Arrow tables, manifest edits) and relies on three promises:
a log record is durable once ``LogWriter.sync`` returns; a manifest version is durable
and atomic once ``ManifestStore.commit`` returns; files are deleted only after no durable
manifest names them.
"""
