"""The boundary with Supabase: client and transport errors translated once, rows checked once.

Every module of ``jobdock`` that talks to PostgREST goes through these helpers, so a library
error never reaches a caller untranslated (``jobdock.errors`` draws the tree).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from postgrest.exceptions import APIError

from jobdock.errors import BackendError, BackendUnavailable
from supabase import Client

Row = dict[str, Any]


@contextmanager
def backend(action: str) -> Iterator[None]:
    """Translate client and transport errors into jobdock errors, once."""
    try:
        yield
    except APIError as exc:
        raise BackendError(f"{action} failed: {exc.message}", exc.code) from exc
    except httpx.TransportError as exc:
        raise BackendUnavailable(
            f"{action} failed: cannot reach Supabase ({exc}). Is localbase running (make up)?"
        ) from exc


def rows_of(data: Any) -> list[Row]:
    """PostgREST rows, checked once: a list of JSON objects."""
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BackendError(f"unexpected response from Supabase: {data!r:.200}")
    return data


def rpc(client: Client, function: str, params: dict[str, Any], action: str) -> Any:
    """Call a SQL function; ``action`` names it in the error a user reads."""
    with backend(action):
        return client.rpc(function, params).execute().data
