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

from dock import push, resources

PAGE_MODULES = ("dock.callbacks", "dock.state", "dock.views", "dock.cancellation")


@contextlib.asynccontextmanager
async def warm_up(_app: st.App) -> AsyncIterator[None]:
    for name in PAGE_MODULES:
        importlib.import_module(name)
    resources.mirror()  # starts reading the jobs in its own thread; returns at once
    yield


app = st.App(
    Path(__file__).with_name("dock_app.py"),
    routes=[WebSocketRoute(push.PATH, push.endpoint(resources.mirror))],
    lifespan=warm_up,
)
