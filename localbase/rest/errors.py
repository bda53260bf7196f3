"""PostgREST error bodies and the SQLSTATE → HTTP status table (spec ``postgrest.md`` §5.7).

RestError               an error response: status, string ``code``, message, details, hint
├── raised directly     for PostgREST's own ``PGRST…`` codes (parse errors, unknown table…)
├── unavailable_error() and connection_lost_error(): 503 while PostgreSQL is down
└── from_postgres()     for errors PostgreSQL raised while running the request
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from starlette.responses import JSONResponse, Response

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class RestError(Exception):
    status: int
    code: str
    message: str
    details: Any = None
    hint: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }

    def response(self, *, head: bool = False) -> Response:
        headers = {"Proxy-Status": f"PostgREST; error={self.code}", **self.headers}
        if head:
            return Response(status_code=self.status, headers=headers, media_type=JSON_TYPE)
        return JSONResponse(
            self.body(), status_code=self.status, headers=headers, media_type=JSON_TYPE
        )


def parse_error(message: str, details: str | None = None) -> RestError:
    return RestError(400, "PGRST100", message, details)


def body_error(message: str = "Empty or invalid json") -> RestError:
    return RestError(400, "PGRST102", message)


def jwt_error(message: str, code: str = "PGRST301") -> RestError:
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    return RestError(401, code, message, headers={"WWW-Authenticate": challenge})


def unavailable_error(reason: str) -> RestError:
    """PostgreSQL is down: PostgREST's answer while its pool cannot connect."""
    return RestError(
        503,
        "PGRST000",
        "Could not connect with the database due to an incorrect db-uri or due to the "
        "PostgreSQL service not running.",
        reason,
    )


def connection_lost_error(detail: str) -> RestError:
    """The connection broke under a request (PostgreSQL died or restarted)."""
    return RestError(503, "PGRST001", "Database client error. Retrying the connection.", detail)


def pool_timeout_error() -> RestError:
    return RestError(504, "PGRST003", "Timed out acquiring connection from connection pool.")


def _status_for(sqlstate: str, message: str, role: str) -> int:
    exact = {
        "23505": 409,
        "23503": 409,
        "42P01": 404,
        "42883": 404,
        "42P17": 500,
        "25006": 405,
        "P0001": 400,
        "53400": 500,
        "22023": 400,
    }
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate == "22023" and message.startswith("role ") and message.endswith("does not exist"):
        return 401
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in exact:
        return exact[sqlstate]
    prefix2 = sqlstate[:2]
    if prefix2 in {"08", "53"} or sqlstate == "57P01":
        # PostgREST answers 503 here, which makes postgrest-py retry; localbase says 500.
        return 500
    if prefix2 in {"0L", "0P", "28"}:
        return 403
    if prefix2 in {
        "09",
        "25",
        "2D",
        "38",
        "39",
        "3B",
        "40",
        "54",
        "55",
        "57",
        "58",
        "F0",
        "HV",
        "P0",
        "XX",
    }:
        return 500
    return 400


def from_postgres(exc: psycopg.Error, role: str) -> RestError:
    """Translate a PostgreSQL error into PostgREST's body and status."""
    if exc.sqlstate is None and isinstance(exc, psycopg.DataError):
        # psycopg refused a value before sending it (text with NUL): PostgreSQL's own error.
        return RestError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    diag = exc.diag
    sqlstate = exc.sqlstate or "XX000"
    message = diag.message_primary or str(exc)
    status = _status_for(sqlstate, message, role)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return RestError(
        status, sqlstate, message, diag.message_detail, diag.message_hint, headers=headers
    )
