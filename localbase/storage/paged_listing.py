"""``POST /object/list-v2/{bucket}``: Storage's cursor-paged listing, as storage3's ``list_v2``
calls it.

The body: ``prefix`` (a plain prefix of the object name, case-sensitive), ``limit`` (default and
maximum 1000), ``cursor`` (the previous page's ``nextCursor``), ``with_delimiter`` and
``sortBy: {column: name|updated_at|created_at, order: asc|desc}``. The answer:
``{hasNext, nextCursor?, nextCursorKey?, folders, objects}``.

* Without the delimiter every object under the prefix is listed by its full name; ``folders``
  is empty.
* With it, objects below the next ``/`` after the prefix fold into one folder named by that
  common prefix (``"dir/sub/"``, ``id`` null); folders and objects carry ``key``, the path
  segment at the prefix's depth. Sorted by a timestamp, a folder takes its oldest object's
  ``created_at`` for both timestamps, as Storage does; sorted by name it has none.
* Entries sort by the column (milliseconds) and then by name in byte order; the cursor is
  Storage's (base64 of ``l:<last name>``, ``o:<order>``, ``c:<column>``, ``a:<last value>``
  lines) and carries the sort, so later pages keep it.

The listing runs as the request's role: RLS on ``storage.objects`` decides what is seen.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from starlette.responses import JSONResponse, Response

from localbase.storage.context import Call, Operation, Target, int_field, optional_text
from localbase.storage.errors import ErrorCode, StorageError, invalid_request
from localbase.storage.models import iso

MAX_KEYS = 1000
_COLUMNS = ("name", "updated_at", "created_at")
_TOKEN_PARTS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}

_LIST = """
with matched as (
    select o.id, o.name, o.updated_at, o.created_at, o.last_accessed_at, o.metadata,
           case when %(delimited)s and strpos(substr(o.name, %(cut)s), '/') > 0
                then left(o.name, %(cut)s + strpos(substr(o.name, %(cut)s), '/') - 1)
           end as folder
    from storage.objects o
    where o.bucket_id = %(bucket)s and starts_with(o.name, %(prefix)s)
), entries as (
    select folder as name, null::uuid as id,
           case when %(by_time)s then min(created_at) end as updated_at,
           case when %(by_time)s then min(created_at) end as created_at,
           null::timestamptz as last_accessed_at, null::jsonb as metadata
    from matched where folder is not null group by folder
    union all
    select name, id, updated_at, created_at, last_accessed_at, metadata
    from matched where folder is null
)
select name, id, updated_at, created_at, last_accessed_at, metadata from entries
where {after}
order by {order}
limit %(limit)s
"""


@dataclass(frozen=True)
class Page:
    """Where a page starts and how entries are ordered."""

    column: str = "name"
    order: str = "asc"
    start_after: str = ""
    after: str = ""  # the last entry's sort column value, for timestamp sorts

    def order_sql(self) -> sql.Composable:
        direction = sql.SQL(self.order)
        by_name = sql.SQL('name collate "C" {}').format(direction)
        if self.column == "name":
            return by_name
        return sql.SQL("{} {}, {}").format(self._stamp(), direction, by_name)

    def after_sql(self) -> sql.Composable:
        if not self.start_after:
            return sql.SQL("true")
        op = sql.SQL(">" if self.order == "asc" else "<")
        if self.column == "name":
            return sql.SQL('name collate "C" {} %(start_after)s').format(op)
        return sql.SQL(
            "row({}, name collate \"C\") {} row(coalesce(nullif(%(after)s, '')::timestamptz,"
            " 'epoch'::timestamptz), %(start_after)s)"
        ).format(self._stamp(), op)

    def _stamp(self) -> sql.Composable:
        return sql.SQL("coalesce(date_trunc('milliseconds', {}), 'epoch'::timestamptz)").format(
            sql.Identifier(self.column)
        )

    def cursor(self, last: Mapping[str, Any]) -> str:
        value = last[self.column] if self.column != "name" else None
        parts = {"l": last["name"], "o": self.order, "c": self.column, "a": iso(value) or ""}
        text = "\n".join(f"{k}:{v}" for k, v in parts.items() if v)
        return base64.b64encode(text.encode()).decode()


def invalid_cursor() -> StorageError:
    return StorageError(400, ErrorCode.INVALID_PARAMETER, "Invalid Parameter continuation token")


def decode_cursor(token: str) -> dict[str, str]:
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc
    found: dict[str, str] = {}
    for line in text.split("\n"):
        key, colon, value = line.partition(":")
        if not colon or key not in _TOKEN_PARTS:
            raise invalid_cursor()
        found[_TOKEN_PARTS[key]] = value
    if found.get("column", "name") not in _COLUMNS or found.get("order", "asc") not in {
        "asc",
        "desc",
    }:
        raise invalid_cursor()
    return found


def _sort(body: Mapping[str, Any]) -> tuple[str, str]:
    sort_by = body.get("sortBy")
    if sort_by is None:
        return "name", "asc"
    if not isinstance(sort_by, dict) or "column" not in sort_by:
        raise invalid_request("body/sortBy must have required property 'column'")
    column, order = sort_by["column"], sort_by.get("order", "asc")
    if column not in _COLUMNS:
        raise invalid_request("body/sortBy/column must be equal to one of the allowed values")
    if order not in {"asc", "desc"}:
        raise invalid_request("body/sortBy/order must be equal to one of the allowed values")
    return column, order


def _page(body: Mapping[str, Any]) -> Page:
    column, order = _sort(body)
    token = optional_text(body, "cursor")
    if not token:
        return Page(column, order)
    cursor = decode_cursor(token)
    return Page(
        cursor.get("column") or column,
        cursor.get("order") or order,
        cursor.get("start_after", ""),
        cursor.get("after", ""),
    )


def _key(name: str, levels: int) -> str:
    segments = name.rstrip("/").split("/")
    return segments[levels - 1] if len(segments) >= levels else ""


def _entry(row: Mapping[str, Any], levels: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": None if row["id"] is None else str(row["id"]),
        "name": row["name"],
        "updated_at": iso(row["updated_at"]),
        "created_at": iso(row["created_at"]),
        "last_accessed_at": iso(row["last_accessed_at"]),
        "metadata": row["metadata"],
    }
    if levels is not None:
        entry = {"key": _key(row["name"], levels), **entry}
    return entry


async def list_objects_v2(call: Call, target: Target) -> Response:
    body = await call.json_object()
    prefix = optional_text(body, "prefix") or ""
    limit = min(int_field(body, "limit", MAX_KEYS, minimum=1), MAX_KEYS)
    delimited = body.get("with_delimiter", False)
    if not isinstance(delimited, bool):
        raise invalid_request("body/with_delimiter must be boolean")
    page = _page(body)
    params = {
        "bucket": target.bucket,
        "prefix": prefix,
        "cut": len(prefix) + 1,
        "delimited": delimited,
        "by_time": page.column != "name",
        "start_after": page.start_after,
        "after": page.after,
        "limit": limit + 1,
    }
    query = sql.SQL(_LIST).format(after=page.after_sql(), order=page.order_sql())
    async with call.transaction(Operation.LIST_OBJECTS_V2, read_only=True) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return JSONResponse(_result(rows, limit, page, prefix, delimited))


def _result(
    rows: list[Any], limit: int, page: Page, prefix: str, delimited: bool
) -> dict[str, Any]:
    shown = rows[:limit]
    levels = (len(prefix.split("/")) if prefix else 1) if delimited else None
    result: dict[str, Any] = {
        "hasNext": len(rows) > limit,
        "folders": [_entry(row, levels) for row in shown if row["id"] is None],
        "objects": [_entry(row, levels) for row in shown if row["id"] is not None],
    }
    if len(rows) > limit:
        last = shown[-1]
        result["nextCursor"] = page.cursor(last)
        result["nextCursorKey"] = last["name"].rstrip("/") if last["id"] is None else last["name"]
    return result
