"""Size limits on every request, checked before routing (as a gateway in front of Supabase does).

* the URL's query string: at most ``max_query_bytes``, else **414**;
* one header (name and value): at most ``max_header_bytes``, else **431**;
* all headers together: at most ``max_headers_bytes``, else **431**.

A query string too long for ``/rest/v1`` is answered in PostgREST's shape (``PGRST100``, a
query-string error); everything else in the gateway's (``{"message", "hint"}``, as hosted
Supabase's API gateway answers). A refused WebSocket upgrade gets the same HTTP response.
Tokens have a tighter limit of their own (``localbase.auth.MAX_TOKEN_BYTES``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from localbase import upgrade_denial

JSON_TYPE = b"application/json; charset=utf-8"


@dataclass(frozen=True)
class RequestLimits:
    max_query_bytes: int = 32 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers_bytes: int = 32 * 1024

    def problem(self, scope: Scope) -> tuple[int, str, str] | None:
        """``(status, message, detail)`` for a request over a limit, else ``None``."""
        query = len(scope.get("query_string", b""))
        if query > self.max_query_bytes:
            return (
                414,
                "URI too long",
                f"The query string is {query} bytes; at most {self.max_query_bytes} are accepted.",
            )
        total = 0
        for name, value in scope.get("headers", ()):
            size = len(name) + len(value)
            total += size
            if size > self.max_header_bytes:
                return (
                    431,
                    "Request header fields too large",
                    f"The {name.decode('latin-1')} header is {size} bytes; at most "
                    f"{self.max_header_bytes} are accepted.",
                )
        if total > self.max_headers_bytes:
            return (
                431,
                "Request header fields too large",
                f"The headers are {total} bytes; at most {self.max_headers_bytes} are accepted.",
            )
        return None


class LimitsMiddleware:
    """Pure ASGI: refuses oversized requests before any route sees them."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.limits.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message, detail = problem
        if scope["type"] == "websocket":
            upgrade_denial.mark_denied()
        body = json.dumps(_body(scope, status, message, detail)).encode()
        headers = [(b"content-type", JSON_TYPE), (b"content-length", str(len(body)).encode())]
        prefix = "" if scope["type"] == "http" else "websocket."
        await send({"type": f"{prefix}http.response.start", "status": status, "headers": headers})
        await send({"type": f"{prefix}http.response.body", "body": body})


def _body(scope: Scope, status: int, message: str, detail: str) -> dict[str, Any]:
    if status == 414 and str(scope.get("path", "")).startswith("/rest/v1"):
        return {"code": "PGRST100", "details": detail, "hint": None, "message": message}
    return {"message": message, "hint": detail}
