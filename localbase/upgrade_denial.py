"""Refusing a WebSocket upgrade with an HTTP response, without uvicorn calling it an error.

uvicorn's ``websockets-sansio`` protocol counts a handshake as complete only after an accept or
a close, so after a denial response (the ASGI ``websocket.http.response`` extension, which it
does send correctly) it still logs "ASGI callable returned without completing handshake.".
:func:`mark_denied` records, in the request's context, that the upgrade was refused on
purpose; :class:`DeniedUpgradeFilter` on the ``uvicorn.error`` logger then drops that one line
for that one request, and nothing else.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Final

_denied: contextvars.ContextVar[bool] = contextvars.ContextVar("upgrade_denied", default=False)
_MESSAGE: Final = "ASGI callable returned without completing handshake."


def mark_denied() -> None:
    """Call before sending the denial response of a WebSocket upgrade."""
    _denied.set(True)


class DeniedUpgradeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_denied.get() and record.getMessage() == _MESSAGE)


def install() -> None:
    """Attach the filter to uvicorn's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DeniedUpgradeFilter) for f in logger.filters):
        logger.addFilter(DeniedUpgradeFilter())
