"""The Processing Dock with server push: ``streamlit run dock_server.py`` (what ``make up`` runs).

The same app as ``streamlit run dock_app.py``, served through Streamlit's ASGI ``App`` so that
it can also answer the WebSocket of ``dock.push``: open pages hear of changes instead of
asking for them on a timer, and an idle dock costs nothing per tab. The server also starts the
live mirror and loads the page's modules as it starts, so the first page does not wait for
them.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import streamlit as st
from starlette.routing import WebSocketRoute

from dock import push
from dock.mirror import JobMirror

# Imported once Streamlit's runtime runs (in ``warm_up``), not with this file: the caches they
# declare then belong to the runtime.
PAGE_MODULES = ("dock.resources", "dock.callbacks", "dock.state", "dock.views")


def mirror() -> JobMirror:
    """The process's live mirror (``dock.resources.mirror``), started on first use."""
    live: JobMirror = importlib.import_module("dock.resources").mirror()
    return live


@contextlib.asynccontextmanager
async def warm_up(_app: st.App) -> AsyncIterator[None]:
    for name in PAGE_MODULES:
        importlib.import_module(name)
    mirror()  # starts reading the jobs in its own thread; returns at once
    yield


app = st.App(
    Path(__file__).with_name("dock_app.py"),
    routes=[WebSocketRoute(push.PATH, push.endpoint(mirror))],
    lifespan=warm_up,
)
