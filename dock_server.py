"""The Processing Dock with server push: ``streamlit run dock_server.py`` (what ``make up`` runs).

The same app as ``streamlit run dock_app.py``, served through Streamlit's ASGI ``App`` so that
it can also answer the WebSocket of ``dock.push``: open pages hear of changes instead of
asking for them on a timer, and an idle dock costs nothing per tab.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.routing import WebSocketRoute

from dock import push, resources

app = st.App(
    Path(__file__).with_name("dock_app.py"),
    routes=[WebSocketRoute(push.PATH, push.endpoint(resources.mirror))],
)
