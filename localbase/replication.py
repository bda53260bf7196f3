"""The change feed: committed transactions of a publication, read from a ``pgoutput`` slot.

A dedicated thread holds a logical replication connection (psycopg2's
``LogicalReplicationConnection``), creates a **temporary** slot (dropped by the server when the
connection ends, so a stopped or killed localbase never leaves WAL behind), streams protocol
version 1 of ``pgoutput`` and decodes Begin/Relation/Insert/Update/Delete/Commit. Each commit is
handed over as one :class:`Transaction`, in commit order, and its end LSN is confirmed at once so
the server can recycle WAL: delivery is at most once, as on Supabase.

A commit is streamed as soon as its WAL record is flushed, which can be a moment before other
sessions see it (the committing backend still shows it as running): a reader that needs the
database to include the transaction waits for its ``xid`` to be visible (see
:mod:`localbase.realtime.visibility`).

If the connection drops, the thread reconnects with backoff and a new slot. Changes committed
during the gap are not seen (Supabase's temporary slot behaves the same way).
"""

from __future__ import annotations

import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import psycopg2
import psycopg2.extras

log = logging.getLogger("localbase.replication")

PUBLICATION: Final = "supabase_realtime"
ChangeKind = Literal["INSERT", "UPDATE", "DELETE"]
_PG_EPOCH_UNIX: Final = 946_684_800  # 2000-01-01T00:00:00Z
_KEY_FLAG: Final = 1
_IGNORED: Final = frozenset(b"OYTM")  # Origin, Type, Truncate, logical Message
#: A logical walsender can miss the wake-up for a commit that lands while it is going to
#: sleep, and then sleep until its next timer (seconds). Any message from the client wakes it,
#: so while changes are flowing an idle moment is answered with a status update after 5 ms;
#: after a second without changes the walsender is asleep for good and 100 ms is enough.
_NUDGE_BUSY: Final = 0.005
_NUDGE_IDLE: Final = 0.1
_BUSY_FOR: Final = 1.0
_KINDS: Final[dict[int, ChangeKind]] = {ord("I"): "INSERT", ord("U"): "UPDATE", ord("D"): "DELETE"}


class Unchanged:
    """A TOASTed value that the UPDATE did not touch (pgoutput sends no data for it)."""

    _instance: Unchanged | None = None

    def __new__(cls) -> Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST: Final = Unchanged()

#: One column of a tuple: its text output, ``None`` for SQL NULL, or :data:`UNCHANGED_TOAST`.
Value = str | None | Unchanged


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    is_key: bool


@dataclass(frozen=True, slots=True, eq=False)
class Relation:
    """A published table as pgoutput describes it. A new object whenever the server resends
    it (after DDL, GRANT, RLS or replica identity changes), so it doubles as a cache key."""

    oid: int
    schema: str
    table: str
    replica_identity: str  # 'd'efault, 'n'othing, 'f'ull, 'i'ndex
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class RowChange:
    """One row-level change. ``new``/``old`` are keyed by column name.

    ``old`` is the full previous row under REPLICA IDENTITY FULL, only the key columns when a
    key changed or a row was deleted under DEFAULT, and ``None`` when pgoutput sent no old image.
    """

    kind: ChangeKind
    relation: Relation
    new: dict[str, Value] | None
    old: dict[str, Value] | None


@dataclass(frozen=True, slots=True)
class Transaction:
    xid: int  # the top-level transaction id (32 bits, as pgoutput sends it)
    commit_lsn: int
    end_lsn: int
    commit_timestamp: str  # UTC, milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ
    changes: tuple[RowChange, ...]
    received_at: float  # time.monotonic() when the commit arrived


def format_commit_timestamp(pg_micros: int) -> str:
    """Microseconds since 2000-01-01 UTC, as Supabase prints ``commit_timestamp``: UTC,
    milliseconds (truncated), a literal ``Z``."""
    seconds, micros = divmod(pg_micros, 1_000_000)
    clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds + _PG_EPOCH_UNIX))
    return f"{clock}.{micros // 1000:03d}Z"


class _Reader:
    """A cursor over one pgoutput message."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 1  # past the message type byte

    def byte(self) -> int:
        value = self._data[self._pos]
        self._pos += 1
        return value

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self._data, self._pos)
        self._pos += 2
        return int(value)

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self._data, self._pos)
        self._pos += 4
        return int(value)

    def uint32(self) -> int:
        (value,) = struct.unpack_from("!I", self._data, self._pos)
        self._pos += 4
        return int(value)

    def int64(self) -> int:
        (value,) = struct.unpack_from("!q", self._data, self._pos)
        self._pos += 8
        return int(value)

    def string(self) -> str:
        end = self._data.index(0, self._pos)
        value = self._data[self._pos : end].decode()
        self._pos = end + 1
        return value

    def text(self, length: int) -> str:
        value = self._data[self._pos : self._pos + length].decode()
        self._pos += length
        return value


class PgOutputDecoder:
    """Turns pgoutput (protocol version 1) messages into committed :class:`Transaction` objects."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self._xid = 0
        self._changes: list[RowChange] = []

    def feed(self, payload: bytes) -> Transaction | None:
        """Decode one message; returns the transaction when ``payload`` is its Commit."""
        kind = payload[0]
        reader = _Reader(payload)
        if kind == ord("B"):
            reader.int64(), reader.int64()  # final LSN, commit timestamp (both also in Commit)
            self._xid = reader.uint32()
            self._changes = []
        elif kind == ord("C"):
            return self._commit(reader)
        elif kind == ord("R"):
            self._relation(reader)
        elif kind in (ord("I"), ord("U"), ord("D")):
            self._changes.append(self._row_change(kind, reader))
        elif kind not in _IGNORED:
            log.debug("ignoring pgoutput message %r", chr(kind))
        return None

    def _commit(self, reader: _Reader) -> Transaction:
        reader.byte()  # flags
        commit_lsn, end_lsn, timestamp = reader.int64(), reader.int64(), reader.int64()
        changes, self._changes = tuple(self._changes), []
        return Transaction(
            self._xid,
            commit_lsn,
            end_lsn,
            format_commit_timestamp(timestamp),
            changes,
            time.monotonic(),
        )

    def _relation(self, reader: _Reader) -> None:
        oid, schema, table = reader.int32(), reader.string(), reader.string()
        identity = chr(reader.byte())
        columns = []
        for _ in range(reader.int16()):
            flags, name, type_oid = reader.byte(), reader.string(), reader.int32()
            reader.int32()  # type modifier
            columns.append(Column(name, type_oid, bool(flags & _KEY_FLAG)))
        self.relations[oid] = Relation(oid, schema or "pg_catalog", table, identity, tuple(columns))

    def _row_change(self, kind: int, reader: _Reader) -> RowChange:
        relation = self.relations[reader.int32()]
        old: dict[str, Value] | None = None
        new: dict[str, Value] | None = None
        marker = chr(reader.byte())
        if marker in "KO":
            old = _tuple(reader, relation, keys_only=marker == "K")
            if kind != ord("D"):
                marker = chr(reader.byte())
        if marker == "N":
            new = _tuple(reader, relation, keys_only=False)
        return RowChange(_KINDS[kind], relation, new, old)


def _tuple(reader: _Reader, relation: Relation, *, keys_only: bool) -> dict[str, Value]:
    row: dict[str, Value] = {}
    for column in relation.columns[: reader.int16()]:
        marker = reader.byte()
        value: Value
        if marker == ord("t"):
            value = reader.text(reader.int32())
        elif marker == ord("u"):
            value = UNCHANGED_TOAST
        else:
            value = None
        if column.is_key or not keys_only:
            row[column.name] = value
    return row


class ReplicationStream:
    """Runs the replication connection in its own thread; see the module docstring.

    ``on_transaction`` and ``on_connection`` are called **from that thread**: they must only
    hand off (for example with ``loop.call_soon_threadsafe``).
    """

    def __init__(
        self,
        dsn: str,
        on_transaction: Callable[[Transaction], None],
        *,
        on_connection: Callable[[bool], None] | None = None,
        publication: str = PUBLICATION,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._on_transaction = on_transaction
        self._on_connection = on_connection or (lambda connected: None)
        self._publication = publication
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="realtime-replication", daemon=True)
        self.connected = threading.Event()
        self.slot_name = f"localbase_realtime_{os.getpid()}_{id(self) & 0xFFFF:x}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish, and wait for it (the temporary slot goes with it)."""
        self._stop.set()
        os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout)
        os.close(self._wake_read)
        os.close(self._wake_write)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._stream()
            except (psycopg2.Error, OSError) as exc:
                log.warning(
                    "replication stream lost (%s); changes until it is back are not "
                    "delivered; reconnecting in %.1f s",
                    str(exc).strip(),
                    backoff,
                )
            except Exception:
                log.exception("replication stream failed; reconnecting in %.1f s", backoff)
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self._on_connection(False)
            if time.monotonic() - started > 30:
                backoff = 0.1
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _stream(self) -> None:
        conn = psycopg2.connect(
            self._dsn,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            options="-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres "
            "-c extra_float_digits=1 -c bytea_output=hex",
            application_name="localbase_realtime",
        )
        try:
            cursor = conn.cursor()
            cursor.execute(
                f"CREATE_REPLICATION_SLOT {self.slot_name} TEMPORARY LOGICAL pgoutput"
                " (SNAPSHOT 'nothing')"
            )
            cursor.start_replication(
                slot_name=self.slot_name,
                decode=False,
                status_interval=5,
                options={"proto_version": "1", "publication_names": self._publication},
            )
            self.connected.set()
            self._on_connection(True)
            log.info("replication stream started (slot %s)", self.slot_name)
            self._consume(conn, cursor)
        finally:
            conn.close()

    def _consume(
        self, conn: psycopg2.extensions.connection, cursor: psycopg2.extras.ReplicationCursor
    ) -> None:
        decoder = PgOutputDecoder()
        last_data = time.monotonic()
        while not self._stop.is_set():
            message = cursor.read_message()
            if message is None:
                busy = time.monotonic() - last_data < _BUSY_FOR
                wait = _NUDGE_BUSY if busy else _NUDGE_IDLE
                readable, _, _ = select.select([conn, self._wake_read], [], [], wait)
                if not readable:
                    cursor.send_feedback(force=True)
                continue
            last_data = time.monotonic()
            transaction = decoder.feed(message.payload)
            if transaction is not None:
                self._on_transaction(transaction)
                cursor.send_feedback(flush_lsn=transaction.end_lsn)
