"""A refused Realtime upgrade is an HTTP 401 for the client and not an error in the log."""

from __future__ import annotations

import pytest
import websockets
from websockets.asyncio.client import connect

from devstack.localbase import LocalbaseProcess
from tests.conformance.realtime_helpers import ws_url


async def test_refused_upgrade_is_401_and_logs_no_handshake_error(
    localbase: LocalbaseProcess,
) -> None:
    for _ in range(3):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(ws_url(localbase, "not-a-jwt")):
                pass
        assert info.value.response.status_code == 401
    # A request after the refusals: its answer means their log lines were written.
    async with connect(ws_url(localbase)):
        pass
    log = localbase.log_path.read_text()
    assert "refusing realtime socket" in log
    assert "without completing handshake" not in log
