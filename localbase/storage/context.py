"""What a storage handler works with: the request, who asks, the database, and the files.

Every statement on ``storage.buckets``/``storage.objects`` runs in ``Call.transaction``: one
transaction as the request's role with Storage's GUCs published (legacy ``request.jwt.claim.*``
plus ``storage.operation``), so grants and RLS apply. ``elevated=True`` runs it as
``service_role`` instead; Storage does the same (``asSuperUser()``) for bucket settings during an
upload and for public or signed downloads, where the bucket's flag or the signed token is the
permission.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from starlette.requests import Request

from localbase import strict_json
from localbase.auth import Identity
from localbase.db import Database, RequestContext
from localbase.storage.errors import entity_too_large, invalid_request
from localbase.storage.files import FileStore

MAX_JSON_BYTES = 1024 * 1024
SERVICE = Identity("service_role", {"role": "service_role"})
_OPERATION_SQL = "select set_config('storage.operation', %s, true)"


class Operation(StrEnum):
    """Storage's operation names, published as ``storage.operation`` for policies and logs."""

    CREATE_BUCKET = "storage.bucket.create"
    DELETE_BUCKET = "storage.bucket.delete"
    EMPTY_BUCKET = "storage.bucket.empty"
    LIST_BUCKET = "storage.bucket.list"
    GET_BUCKET = "storage.bucket.get"
    UPDATE_BUCKET = "storage.bucket.update"
    COPY_OBJECT = "storage.object.copy"
    CREATE_OBJECT = "storage.object.upload"
    UPDATE_OBJECT = "storage.object.upload_update"
    DELETE_OBJECT = "storage.object.delete"
    DELETE_OBJECTS = "storage.object.delete_many"
    GET_PUBLIC_OBJECT = "storage.object.get_public"
    GET_AUTH_OBJECT = "storage.object.get_authenticated"
    GET_SIGNED_OBJECT = "storage.object.get_signed"
    GET_OBJECT_INFO = "object.get_authenticated_info"
    SIGN_OBJECT_URL = "storage.object.sign"
    SIGN_OBJECT_URLS = "storage.object.sign_many"
    SIGN_UPLOAD_URL = "storage.object.sign_upload_url"
    UPLOAD_SIGNED_OBJECT = "storage.object.upload_signed"
    LIST_OBJECTS = "storage.object.list"
    LIST_OBJECTS_V2 = "storage.object.list_v2"
    MOVE_OBJECT = "storage.object.move"


@dataclass(frozen=True)
class Target:
    """What a route names: a bucket id and, for object routes, an object key."""

    bucket: str = ""
    key: str = ""


@dataclass(frozen=True)
class Call:
    """One storage request being served."""

    request: Request
    identity: Identity
    db: Database
    files: FileStore

    @property
    def owner_id(self) -> str | None:
        """The JWT ``sub``, which Storage records as the owner of what the request creates."""
        sub = self.identity.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None

    @property
    def owner(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.owner_id) if self.owner_id else None
        except ValueError:
            return None

    @asynccontextmanager
    async def transaction(
        self, operation: Operation, *, read_only: bool = False, elevated: bool = False
    ) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A cursor in one transaction as the request's role (or service_role if elevated)."""
        ctx = RequestContext(
            SERVICE if elevated else self.identity,
            self.request.method,
            self.request.url.path,
            self.request.headers,
            read_only=read_only,
            legacy_claims=True,
        )
        async with self.db.transaction(ctx) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_OPERATION_SQL, (str(operation),))
            yield cur

    async def json_object(self) -> dict[str, Any]:
        """The JSON object body; an empty body counts as ``{}``."""
        raw = bytearray()
        async for chunk in self.request.stream():
            raw += chunk
            if len(raw) > MAX_JSON_BYTES:
                raise entity_too_large("request body")
        if not raw.strip():
            return {}
        try:
            value = strict_json.loads(raw)
        except strict_json.JsonInputError as exc:
            raise invalid_request(f"Body is not valid JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise invalid_request("Body must be a JSON object")
        return value


def text_field(body: Mapping[str, Any], key: str) -> str:
    """A required string field of a JSON body."""
    value = body.get(key)
    if not isinstance(value, str):
        raise invalid_request(f"body must have required string property '{key}'")
    return value


def optional_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"body/{key} must be string")
    return value


def int_field(
    body: Mapping[str, Any], key: str, default: int, *, minimum: int = 0, maximum: int = 2**31 - 1
) -> int:
    """An integer field; numeric strings are accepted, as Storage's schema coercion does."""
    value = body.get(key, default)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise invalid_request(f"body/{key} must be an integer from {minimum} to {maximum}")
    return value
