"""``/storage/v1``: Supabase Storage's HTTP routes, mapped onto the bucket and object handlers.

Before a handler runs, the request passes the same gateway as ``/rest/v1`` (API key, then the
JWT picks the role); a refused JWT answers in Storage's error form (AccessDenied, "403").
Public and signed downloads need no credentials, as on hosted Supabase. Whatever goes wrong
becomes a Storage error body; nothing answers with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from localbase.auth import ApiKeyError, AuthError, ClaimTextError, Identity, request_identity
from localbase.db import Database, DatabaseUnavailable, PoolExhausted
from localbase.storage import buckets, downloads, objects, paged_listing, signed_uploads
from localbase.storage.context import Call, Target
from localbase.storage.errors import (
    StorageError,
    access_denied,
    database_unavailable,
    from_postgres,
    internal_error,
    invalid_request,
    route_not_found,
)
from localbase.storage.files import FileStore

log = logging.getLogger("localbase.storage")

Handler = Callable[[Call, Target], Awaitable[Response]]
BUCKET = "{bucket}"
KEY = "{key}"  # the rest of the path, slashes included


#: Segments after ``object/`` that name Storage's own routes: a request under one of them that
#: no route below takes (another method, a missing key) is Storage's 404, never a read or a
#: write in a bucket of that name.
OBJECT_ROUTE_PREFIXES = (("upload", "sign"), ("list-v2",))


@dataclass(frozen=True)
class Route:
    """A method set and a path pattern of literal segments, ``{bucket}`` and a final ``{key}``."""

    methods: frozenset[str]
    pattern: tuple[str, ...]
    handler: Handler
    public: bool = False  # served without an API key or JWT

    def match(self, method: str, segments: Sequence[str]) -> Target | None:
        if method not in self.methods:
            return None
        bucket = ""
        for index, part in enumerate(self.pattern):
            if part == KEY:
                rest = segments[index:]
                return Target(bucket, "/".join(rest)) if rest else None
            if index >= len(segments):
                return None
            if part == BUCKET and index == 1 and _storage_route(segments):
                return None  # ``object/upload/sign/…`` is a route of its own, never a bucket
            if part == BUCKET and segments[index]:
                bucket = segments[index]
            elif part != segments[index]:
                return None
        trailing = segments[len(self.pattern) :]
        return Target(bucket) if not trailing or list(trailing) == [""] else None


def _storage_route(segments: Sequence[str]) -> bool:
    return any(tuple(segments[1 : 1 + len(p)]) == p for p in OBJECT_ROUTE_PREFIXES)


def _route(methods: str, path: str, handler: Handler, *, public: bool = False) -> Route:
    return Route(frozenset(methods.split()), tuple(path.split("/")), handler, public)


ROUTES = (
    _route("GET", "bucket", buckets.list_buckets),
    _route("POST", "bucket", buckets.create_bucket),
    _route("POST", "bucket/{bucket}/empty", buckets.empty_bucket),
    _route("GET", "bucket/{bucket}", buckets.get_bucket),
    _route("PUT", "bucket/{bucket}", buckets.update_bucket),
    _route("DELETE", "bucket/{bucket}", buckets.delete_bucket),
    _route("POST", "object/list/{bucket}", objects.list_objects),
    _route("POST", "object/list-v2/{bucket}", paged_listing.list_objects_v2),
    _route("POST", "object/move", objects.move),
    _route("POST", "object/copy", objects.copy),
    _route("POST", "object/upload/sign/{bucket}/{key}", signed_uploads.sign_upload),
    _route("PUT", "object/upload/sign/{bucket}/{key}", signed_uploads.upload_signed, public=True),
    _route("POST", "object/sign/{bucket}/{key}", downloads.sign),
    _route("POST", "object/sign/{bucket}", downloads.sign_many),
    _route("GET HEAD", "object/sign/{bucket}/{key}", downloads.signed_download, public=True),
    _route("GET HEAD", "object/public/{bucket}/{key}", downloads.public_download, public=True),
    _route("GET HEAD", "object/authenticated/{bucket}/{key}", downloads.download),
    _route("GET", "object/info/authenticated/{bucket}/{key}", objects.info),
    _route("GET", "object/info/{bucket}/{key}", objects.info),
    _route("GET HEAD", "object/{bucket}/{key}", downloads.download),
    _route("POST", "object/{bucket}/{key}", objects.upload),
    _route("PUT", "object/{bucket}/{key}", objects.update),
    _route("DELETE", "object/{bucket}/{key}", objects.remove_one),
    _route("DELETE", "object/{bucket}", objects.remove_many),
)


def _api_key_error(exc: ApiKeyError) -> Response:
    return JSONResponse({"message": exc.message, "hint": exc.hint}, status_code=401)


class StorageApi:
    """The ``/storage/v1/{path}`` endpoint."""

    def __init__(self, db: Database, storage_dir: Path) -> None:
        self.db = db
        self.files = FileStore(storage_dir)

    async def handle(self, request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            return await self._dispatch(request)
        except ApiKeyError as exc:
            return _api_key_error(exc)
        except StorageError as exc:
            return exc.response(head=head)
        except (DatabaseUnavailable, PoolExhausted) as exc:
            return database_unavailable(str(exc)).response(head=head)
        except psycopg.OperationalError as exc:
            if exc.sqlstate is None:  # the connection died under the request
                return database_unavailable(str(exc)).response(head=head)
            return from_postgres(exc).response(head=head)
        except psycopg.Error as exc:
            return from_postgres(exc).response(head=head)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        except Exception:
            log.exception("storage request failed: %s %s", request.method, request.url.path)
            return internal_error().response(head=head)

    async def _dispatch(self, request: Request) -> Response:
        segments = request.path_params["path"].split("/")
        for route in ROUTES:
            target = route.match(request.method, segments)
            if target is not None:
                break
        else:
            raise route_not_found(request.method, request.url.path)
        identity = Identity.anonymous() if route.public else _identity(request)
        return await route.handler(Call(request, identity, self.db, self.files), target)


def _identity(request: Request) -> Identity:
    try:
        return request_identity(request.headers, request.query_params)
    except AuthError as exc:
        raise access_denied(exc.message) from exc
    except ClaimTextError as exc:
        raise invalid_request(f"{exc.message}: {exc.detail}") from exc
