"""Rows of ``storage.buckets`` / ``storage.objects`` and the JSON shapes Storage answers with.

Bucket JSON carries every key storage3's ``BaseBucket`` needs (spec §6.3); a NULL owner is
written as ``""``, as Storage's response serializer does. Timestamps are ISO-8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BUCKET_COLUMNS = (
    "id, name, owner, owner_id, public, file_size_limit, allowed_mime_types, created_at, updated_at"
)
OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata,"
    " created_at, updated_at, last_accessed_at"
)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Bucket:
    id: str
    name: str
    owner: str
    owner_id: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: tuple[str, ...] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Bucket:
        mimes = row["allowed_mime_types"]
        return cls(
            id=row["id"],
            name=row["name"],
            owner=_text(row["owner"]),
            owner_id=_text(row["owner_id"]),
            public=bool(row["public"]),
            file_size_limit=row["file_size_limit"],
            allowed_mime_types=None if mimes is None else tuple(mimes),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        mimes = self.allowed_mime_types
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "owner_id": self.owner_id,
            "public": self.public,
            "type": "STANDARD",
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": None if mimes is None else list(mimes),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class StoredObject:
    id: str
    bucket_id: str
    name: str
    owner: str
    owner_id: str
    version: str | None
    metadata: Mapping[str, Any]
    user_metadata: Any
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredObject:
        metadata = row["metadata"]
        return cls(
            id=str(row["id"]),
            bucket_id=row["bucket_id"],
            name=row["name"],
            owner=_text(row["owner"]),
            owner_id=_text(row["owner_id"]),
            version=row["version"],
            metadata=metadata if isinstance(metadata, dict) else {},
            user_metadata=row["user_metadata"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_accessed_at=row["last_accessed_at"],
        )

    @property
    def size(self) -> int:
        size = self.metadata.get("size")
        return size if isinstance(size, int) else 0

    @property
    def mimetype(self) -> str:
        return str(self.metadata.get("mimetype") or "application/octet-stream")

    @property
    def cache_control(self) -> str:
        return str(self.metadata.get("cacheControl") or "no-cache")

    @property
    def etag(self) -> str | None:
        etag = self.metadata.get("eTag")
        return etag if isinstance(etag, str) else None

    def to_json(self) -> dict[str, Any]:
        """The ``storage.objects`` row, as the remove endpoint returns it."""
        return {
            "id": self.id,
            "bucket_id": self.bucket_id,
            "name": self.name,
            "owner": self.owner,
            "owner_id": self.owner_id,
            "version": self.version,
            "metadata": dict(self.metadata),
            "user_metadata": self.user_metadata,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "last_accessed_at": iso(self.last_accessed_at),
        }

    def info_json(self) -> dict[str, Any]:
        """The body of ``GET /object/info/...``."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "bucket_id": self.bucket_id,
            "size": self.metadata.get("size"),
            "content_type": self.metadata.get("mimetype"),
            "cache_control": self.metadata.get("cacheControl"),
            "etag": self.metadata.get("eTag"),
            "metadata": self.user_metadata,
            "last_modified": iso(self.updated_at),
            "created_at": iso(self.created_at),
        }


def list_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of ``POST /object/list``: a file, or a folder (``id`` and the rest null)."""
    return {
        "name": row["name"],
        "id": None if row["id"] is None else str(row["id"]),
        "updated_at": iso(row["updated_at"]),
        "created_at": iso(row["created_at"]),
        "last_accessed_at": iso(row["last_accessed_at"]),
        "metadata": row["metadata"],
    }
