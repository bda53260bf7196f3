"""Storage error bodies (spec ``postgrest.md`` §6.4), as Supabase Storage renders them.

    StorageError            one error response: ``statusCode`` (a string), ``code``, ``error``,
    │                       ``message``; sent as HTTP 400, or 500 for internal errors
    ├── constructors        ``no_such_key()``, ``no_such_bucket()``, ``key_already_exists()`` …
    └── from_postgres()     for errors PostgreSQL raised while running a storage statement

The "real" status travels in the body; the HTTP status is 400 for every 4xx, as Storage does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
from starlette.responses import JSONResponse, Response


class ErrorCode(StrEnum):
    NO_SUCH_KEY = "NoSuchKey"
    NO_SUCH_BUCKET = "NoSuchBucket"
    KEY_ALREADY_EXISTS = "KeyAlreadyExists"
    BUCKET_ALREADY_EXISTS = "BucketAlreadyExists"
    RESOURCE_ALREADY_EXISTS = "ResourceAlreadyExists"
    RESOURCE_NOT_EMPTY = "ResourceNotEmpty"
    ACCESS_DENIED = "AccessDenied"
    ENTITY_TOO_LARGE = "EntityTooLarge"
    INVALID_MIME_TYPE = "InvalidMimeType"
    INVALID_KEY = "InvalidKey"
    INVALID_BUCKET_NAME = "InvalidBucketName"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_JWT = "InvalidJWT"
    INVALID_SIGNATURE = "InvalidSignature"
    EXPIRED_TOKEN = "ExpiredToken"
    INVALID_RANGE = "InvalidRange"
    INVALID_PARAMETER = "InvalidParameter"
    DATABASE_ERROR = "DatabaseError"
    INTERNAL_ERROR = "InternalError"


@dataclass
class StorageError(Exception):
    """An error response in Storage's shape. ``status`` is the "real" status code."""

    status: int
    code: ErrorCode
    message: str
    error: str | None = None  # the legacy ``error`` name; defaults to ``code``
    http_status: int | None = None  # overrides the 400/500 rule (e.g. 416)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, str]:
        return {
            "statusCode": str(self.status),
            "code": str(self.code),
            "error": self.error or str(self.code),
            "message": self.message,
        }

    def response(self, *, head: bool = False) -> Response:
        status = self.http_status or (500 if self.status >= 500 else 400)
        if head:
            return Response(status_code=status, headers=self.headers)
        return JSONResponse(self.body(), status_code=status, headers=self.headers)


def no_such_key() -> StorageError:
    return StorageError(404, ErrorCode.NO_SUCH_KEY, "Object not found", "not_found")


def no_such_bucket() -> StorageError:
    return StorageError(404, ErrorCode.NO_SUCH_BUCKET, "Bucket not found", "Bucket not found")


def key_already_exists() -> StorageError:
    return StorageError(
        409, ErrorCode.KEY_ALREADY_EXISTS, "The resource already exists", "Duplicate"
    )


def bucket_already_exists() -> StorageError:
    return StorageError(
        409, ErrorCode.BUCKET_ALREADY_EXISTS, "The resource already exists", "Duplicate"
    )


def resource_already_exists() -> StorageError:
    return StorageError(
        409, ErrorCode.RESOURCE_ALREADY_EXISTS, "The resource already exists", "Duplicate"
    )


def bucket_not_empty() -> StorageError:
    return StorageError(
        409, ErrorCode.RESOURCE_NOT_EMPTY, "The bucket you tried to delete is not empty"
    )


def access_denied(message: str) -> StorageError:
    return StorageError(403, ErrorCode.ACCESS_DENIED, message, "Unauthorized")


def entity_too_large(entity: str = "object") -> StorageError:
    return StorageError(
        413,
        ErrorCode.ENTITY_TOO_LARGE,
        f"The {entity} exceeded the maximum allowed size",
        "Payload too large",
    )


def invalid_mime_type(mimetype: str) -> StorageError:
    return StorageError(
        415,
        ErrorCode.INVALID_MIME_TYPE,
        f"mime type {mimetype} is not supported",
        "invalid_mime_type",
    )


def invalid_key(key: str) -> StorageError:
    return StorageError(400, ErrorCode.INVALID_KEY, f"Invalid key: {key}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, ErrorCode.INVALID_BUCKET_NAME, "Bucket name invalid", "Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, ErrorCode.INVALID_REQUEST, message)


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, ErrorCode.INVALID_JWT, message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, ErrorCode.INVALID_SIGNATURE, message)


def expired_token() -> StorageError:
    return StorageError(400, ErrorCode.EXPIRED_TOKEN, "The provided token has expired.")


def invalid_range(size: int) -> StorageError:
    return StorageError(
        416,
        ErrorCode.INVALID_RANGE,
        "invalid range provided",
        "invalid_range",
        http_status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


def route_not_found(method: str, path: str) -> StorageError:
    return StorageError(
        404,
        ErrorCode.INVALID_REQUEST,
        f"Route {method}:{path} not found",
        "Not Found",
        http_status=404,
    )


def database_unavailable(detail: str) -> StorageError:
    """PostgreSQL is down or restarting: a 503 at once, not a pool timeout."""
    return StorageError(
        503,
        ErrorCode.DATABASE_ERROR,
        f"The database is not available: {detail}",
        "Service Unavailable",
        http_status=503,
    )


def internal_error() -> StorageError:
    return StorageError(500, ErrorCode.INTERNAL_ERROR, "Internal Server Error", "Internal")


def from_postgres(exc: psycopg.Error) -> StorageError:
    """Translate a PostgreSQL error the way Storage's ``DBError.fromDBError`` does."""
    if exc.sqlstate is None and isinstance(exc, psycopg.DataError):
        return invalid_request(str(exc))  # psycopg refused a value (text with NUL)
    sqlstate = exc.sqlstate or ""
    message = exc.diag.message_primary or str(exc)
    if sqlstate == "42501":
        rls = "row-level security" in message
        return access_denied("new row violates row-level security policy" if rls else message)
    if sqlstate == "23505":
        return resource_already_exists()
    if sqlstate == "23503":
        return StorageError(404, ErrorCode.INVALID_REQUEST, "The related resource does not exist")
    if sqlstate == "22023" and message.startswith("role "):
        return access_denied(message)
    if sqlstate.startswith("22"):
        return invalid_request(message)
    return StorageError(500, ErrorCode.DATABASE_ERROR, f"database error, code: {sqlstate}")
