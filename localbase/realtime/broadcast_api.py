"""REST broadcast: ``POST /realtime/v1/api/broadcast`` (a batch) and
``POST /realtime/v1/api/broadcast/{topic}/events/{event}`` (one message, what the Python
client's ``http_send`` calls), with the statuses of spec ``realtime-broadcast.md`` §6.

The caller is the JWT of ``Authorization: Bearer`` (else the ``apikey`` header), verified as the
Realtime socket verifies it. Private messages need write permission on their topic as that JWT:
the batch drops unauthorized ones silently (202), the single endpoint answers 403. REST messages
never exclude anyone, are never stored, and carry ``meta.id`` only when the batch gave an ``id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase import strict_json
from localbase.realtime import authorization, protocol
from localbase.realtime.broadcast import Hub, message_payload
from localbase.realtime.joins import flag
from localbase.realtime.tokens import Claims, TokenError, socket_token, verify

log = logging.getLogger("localbase.realtime")

_UNAUTHORIZED: Final = {"message": "Unauthorized"}
_RATE_LIMITED: Final = {"message": "You have exceeded your rate limit"}
_BATCH_TOO_LARGE: Final = {
    "message": "Too many messages to broadcast, please reduce the batch size"
}
_TOO_LARGE: Final = "Payload size exceeds tenant limit"
_BLANK: Final = ["can't be blank"]
_UNSUPPORTED: Final = "Unsupported Media Type. Use application/json or application/octet-stream"
_MAX_BODY_BYTES: Final = 10 * 1024 * 1024


class BroadcastApi:
    """The two endpoints; see the module docstring."""

    def __init__(self, hub: Hub, admin_pool: AsyncConnectionPool) -> None:
        self._hub = hub
        self._admin = admin_pool

    async def batch(self, request: Request) -> Response:
        claims = _caller(request)
        if claims is None:
            return JSONResponse(_UNAUTHORIZED, status_code=401)
        body = await _json_body(request)
        items = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return JSONResponse({"errors": {"messages": _BLANK}}, status_code=422)
        errors = [_message_errors(item, self._hub) for item in items]
        if any(errors):
            return JSONResponse({"errors": {"messages": errors}}, status_code=422)
        if self._hub.rate.limited:
            return JSONResponse(_RATE_LIMITED, status_code=429)
        if self._hub.rate.would_exceed(len(items)):
            return JSONResponse(_BATCH_TOO_LARGE, status_code=429)
        writable = await self._writable(request, claims, items)
        for item in items:
            private = flag(item.get("private"))
            if private and not writable.get(item["topic"], False):
                continue
            message_id = item.get("id")
            text = message_payload(
                item["event"],
                protocol.dumps(item["payload"]),
                None if message_id is None else str(message_id),
            )
            self._send((item["topic"], private), text)
        return Response(status_code=202)

    async def single(self, request: Request) -> Response:
        claims = _caller(request)
        if claims is None:
            return JSONResponse(_UNAUTHORIZED, status_code=401)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/octet-stream":
            return Response(status_code=202)  # binary payloads never reach 1.0.0 sockets
        if content_type != "application/json":
            return JSONResponse({"error": _UNSUPPORTED}, status_code=415)
        topic, event = request.path_params["topic"], request.path_params["event"]
        payload = await _json_body(request)
        if not isinstance(payload, dict):
            return JSONResponse({"errors": {"payload": ["is invalid"]}}, status_code=422)
        payload_json = protocol.dumps(payload)
        if self._hub.too_large(len(payload_json.encode())):
            return JSONResponse({"errors": {"payload": [_TOO_LARGE]}}, status_code=422)
        if self._hub.rate.limited:
            return JSONResponse(_RATE_LIMITED, status_code=429)
        private = flag(request.query_params.get("private"))
        if private:
            allowed = await authorization.can_write(
                self._admin, topic, claims, [authorization.BROADCAST], _headers(request)
            )
            if not allowed[authorization.BROADCAST]:
                return JSONResponse(_UNAUTHORIZED, status_code=403)
        self._send((topic, private), message_payload(event, payload_json, None))
        return Response(status_code=202)

    def _send(self, topic: tuple[str, bool], text: str) -> None:
        self._hub.rate.add(1)
        self._hub.publish(topic, text)

    async def _writable(
        self, request: Request, claims: Claims, items: list[dict[str, Any]]
    ) -> dict[str, bool]:
        """One write check per private topic of the batch."""
        topics = {item["topic"] for item in items if flag(item.get("private"))}
        writable = {}
        for topic in sorted(topics):
            allowed = await authorization.can_write(
                self._admin, topic, claims, [authorization.BROADCAST], _headers(request)
            )
            writable[topic] = allowed[authorization.BROADCAST]
        return writable


def _caller(request: Request) -> Claims | None:
    authorization_header = request.headers.get("authorization", "")
    scheme, _, token = authorization_header.partition(" ")
    raw = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if raw is None:
        raw = request.headers.get("apikey")
    try:
        return verify(socket_token(raw))
    except TokenError:
        return None


async def _json_body(request: Request) -> object:
    body = await request.body()
    if len(body) > _MAX_BODY_BYTES:
        return None
    try:
        return strict_json.loads(body.decode(), max_depth=protocol.MAX_DEPTH)
    except (strict_json.JsonInputError, UnicodeDecodeError):
        return None


def _message_errors(item: object, hub: Hub) -> dict[str, list[str]]:
    if not isinstance(item, dict):
        return {"topic": _BLANK, "event": _BLANK, "payload": _BLANK}
    errors: dict[str, list[str]] = {}
    for name in ("topic", "event"):
        if not isinstance(item.get(name), str) or not item[name]:
            errors[name] = _BLANK
    payload = item.get("payload")
    if not isinstance(payload, dict):
        errors["payload"] = _BLANK
    elif hub.too_large(len(json.dumps(payload, ensure_ascii=False).encode())):
        errors["payload"] = [_TOO_LARGE]
    return errors


def _headers(request: Request) -> Mapping[str, str]:
    return {name: value for name, value in request.headers.items()}
