"""Storage: the metadata database and the content-addressed artifact store.

The metadata store holds the registry (models, versions, aliases, audit log) in SQLite by
default or PostgreSQL for a team; artifacts are immutable blobs named by their SHA-256,
on the local disk or any fsspec URL.
"""

from __future__ import annotations

from ferryman.store.artifacts import ArtifactStore, BlobRef
from ferryman.store.database import Database, safe_url

__all__ = ["ArtifactStore", "BlobRef", "Database", "safe_url"]
