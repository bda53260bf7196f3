"""Supabase Realtime (Phoenix protocol vsn 1.0.0, ``postgres_changes``) over pgoutput.

Modules, from the socket inwards: :mod:`service` (endpoint and change feed),
:mod:`connection` (one socket), :mod:`channels` (one joined topic), :mod:`protocol` (frames),
:mod:`tokens` (JWT rules), :mod:`bindings` and :mod:`filters` (join parameters),
:mod:`subscriptions` (creation checks and lookup), :mod:`delivery` (change to frames),
:mod:`catalog` and :mod:`values` (table facts and ``to_jsonb`` values), :mod:`visibility`
(when a streamed commit can be read back), :mod:`messages` (texts).
"""

from localbase.realtime.service import Realtime, RealtimeConfig

__all__ = ["Realtime", "RealtimeConfig"]
