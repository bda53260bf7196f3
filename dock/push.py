"""Server push for open pages: the dock tells each page when the live mirror has changed.

Streamlit has no way for a server to wake a page. Without one, every page asks on a timer
("has anything changed?", ``DOCK_REFRESH_SECONDS``), and each ask is a Streamlit run: a
steady cost per open tab even when nothing happens. Served by ``dock_server.py`` (``st.App``),
the dock also answers a WebSocket at ``PATH`` that sends the mirror's version whenever it
changes (at most every ``MIN_SPACING`` seconds, so a burst of changes is one redraw), and
nothing otherwise. A small component in the page (``watch``) turns each message into a run of
the page's watcher fragment. An idle dock then costs nothing per tab.

Without the route (``streamlit run dock_app.py``), or while the socket is down, the component
falls back to asking on the timer, as before; the page never waits longer than the timer.
The socket carries version numbers only: no rows, no keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import streamlit as st
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from dock.mirror import JobMirror

PATH = "/_dock/changes"
MIN_SPACING = 0.25  # seconds between two messages on one socket

_JS = """
export default function (component) {
  const { setTriggerValue, data } = component;
  // One socket per page, kept across the page's runs (this function runs at every render).
  const push = (window.__jobdockPush ??= { socket: null, timer: null, backoff: 1000 });
  push.trigger = setTriggerValue;
  push.fallbackMs = data.fallback_ms;
  const poll = () => {
    if (push.timer === null) {
      push.timer = setInterval(() => push.trigger("changed", "tick"), push.fallbackMs);
    }
  };
  const connect = () => {
    const url = new URL(data.path.replace(/^\\//, ""), document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = (push.socket = new WebSocket(url));
    socket.onopen = () => {
      clearInterval(push.timer);
      push.timer = null;
      push.backoff = 1000;
    };
    socket.onmessage = (event) => push.trigger("changed", event.data);
    socket.onclose = () => {
      poll();
      setTimeout(connect, push.backoff);
      push.backoff = Math.min(push.backoff * 2, 30000);
    };
  };
  if (push.socket === null) {
    poll();  // until the socket is open
    connect();
  }
}
"""

_component = st.components.v2.component("jobdock_push", js=_JS)


def watch(fallback_seconds: float) -> None:
    """Mount the page's push listener (once per page; invisible). Each message it gets reruns
    the fragment that mounted it."""
    _component(
        key="dock-push",
        data={"path": PATH, "fallback_ms": round(fallback_seconds * 1000)},
        on_changed_change=_ignore,
    )


def _ignore() -> None:
    """The rerun itself is the point; the value does not matter."""


def endpoint(mirror: Callable[[], JobMirror]) -> Callable[[WebSocket], Any]:
    """The WebSocket handler at ``PATH``, reading the process's mirror from ``mirror()``."""

    async def changes(websocket: WebSocket) -> None:
        await websocket.accept()
        live = mirror()
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(changed.set)

        stop = live.listen(wake)
        closed = asyncio.ensure_future(_closed(websocket))
        try:
            sent: tuple[int, bool] | None = None
            while not closed.done():
                changed.clear()
                snapshot = live.snapshot()
                if (snapshot.version, snapshot.live) != sent:
                    sent = (snapshot.version, snapshot.live)
                    await websocket.send_text(f"{snapshot.version}")
                    await asyncio.wait([closed], timeout=MIN_SPACING)  # changes meanwhile: one
                    continue
                waiter = asyncio.ensure_future(changed.wait())
                await asyncio.wait([closed, waiter], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away mid-send
        finally:
            stop()
            closed.cancel()
            if websocket.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError):
                    await websocket.close()

    return changes


async def _closed(websocket: WebSocket) -> None:
    """Return when the page closes the socket (pages send nothing else)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
