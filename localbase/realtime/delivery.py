"""From one committed row change to ``postgres_changes`` frames, as Supabase's ``apply_rls``.

For each change, the subscriptions of its table that want its type and were live before it
committed are grouped by JWT role (spec §5):

* INSERT/UPDATE on a table without a primary key gives ``Error 400``; a role that cannot
  SELECT every primary-key column gives ``Error 401`` (empty record, null timestamp);
* filters are checked against the new row (INSERT/UPDATE) or the old identity (DELETE);
* on an RLS-enabled table, INSERT/UPDATE are visible only if the row, **as it is now**, can be
  selected with the subscriber's role and claims (DELETE is never RLS-checked); "now" includes
  the change's own transaction, which the stream can deliver a moment before other sessions see
  it (:mod:`visibility`);
* the payload holds only the columns the role may SELECT (and the ``select`` list plus the
  primary key); DELETE ``old_record`` is primary key only when RLS is on; a change over 1 MiB is
  sent with ``Error 413`` and only its fields of at most 64 bytes.

Each channel gets one frame per (role, ``select``) view, listing the ids of its bindings that
matched. Every frame counts once against the project's messages-per-second rate; while the
project is over its limit, frames are counted as dropped instead of sent (:mod:`rates`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from localbase.realtime import protocol
from localbase.realtime.catalog import Catalog, TableInfo
from localbase.realtime.filters import TypedCondition, expression, fast_result, parameters
from localbase.realtime.rates import EventRate
from localbase.realtime.subscriptions import Registry, Sink, Subscription
from localbase.realtime.values import fast_json, postgres_json, string
from localbase.realtime.values import name as json_name
from localbase.realtime.visibility import SNAPSHOT, Commit
from localbase.replication import RowChange, Transaction, Unchanged, Value

log = logging.getLogger("localbase.realtime")

MAX_RECORD_BYTES: Final = 1024 * 1024
_TRIMMED_FIELD_BYTES: Final = 64
_COLUMN_OVERHEAD: Final = 48  # {"name":…,"type":…,"typeoid":…,"value":…} around each value
_NO_PRIMARY_KEY: Final = '["Error 400: Bad Request, no primary key"]'
_UNAUTHORIZED: Final = '["Error 401: Unauthorized"]'
_TOO_LARGE: Final = '["Error 413: Payload Too Large"]'
_Key: TypeAlias = tuple[object, ...]
_SET_CLAIMS: Final = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"
)


@dataclass(frozen=True, slots=True)
class Images:
    """The row images of a change, as text, keyed by column name."""

    match: Mapping[str, str | None]  # what filters see: new row (minus unchanged TOAST) or old
    record: Mapping[str, str | None] | None  # INSERT/UPDATE record, TOAST filled from old
    old: Mapping[str, str | None] | None  # UPDATE/DELETE old_record

    @classmethod
    def of(cls, change: RowChange) -> Images:
        old = _present(change.old) if change.old is not None else None
        if change.kind == "DELETE":
            return cls(old or {}, None, old or {})
        new = _present(change.new or {})
        record: dict[str, str | None] = {}
        for name, value in (change.new or {}).items():
            if not isinstance(value, Unchanged):
                record[name] = value
            elif old is not None and name in old:
                record[name] = old[name]  # unchanged TOAST, filled from the FULL old row
        if change.kind == "UPDATE" and old is None:
            keys = {column.name for column in change.relation.columns if column.is_key}
            old = {name: value for name, value in new.items() if name in keys}
        return cls(new, record, old)


def _present(row: Mapping[str, Value]) -> dict[str, str | None]:
    return {name: value for name, value in row.items() if not isinstance(value, Unchanged)}


@dataclass(frozen=True, slots=True)
class Encoded:
    """JSON text of every value of the record and old record."""

    record: Mapping[str, str]
    old: Mapping[str, str]
    wal_bytes: int  # the change's size (of all its columns), or an upper bound under the limit

    @property
    def too_large(self) -> bool:
        return self.wal_bytes > MAX_RECORD_BYTES


#: Steps whose RLS answers are fetched together: large enough that a bulk update costs a few
#: queries, small enough that its first frames leave while the rest is still being planned
#: (the subscribers start on them meanwhile).
RLS_CHUNK: Final = 250


class Delivery:
    """Applies :mod:`delivery` rules to each change and hands frames to the channels."""

    def __init__(
        self,
        registry: Registry,
        catalog: Catalog,
        admin_pool: AsyncConnectionPool,
        api_pool: AsyncConnectionPool,
        rate: EventRate,
    ) -> None:
        self._rate = rate
        self._frames = 0
        self._registry = registry
        self._catalog = catalog
        self._admin = admin_pool
        self._api = api_pool

    async def transaction(self, transaction: Transaction) -> int:
        return await self.transactions([transaction])

    async def transactions(self, batch: Sequence[Transaction]) -> int:
        """Deliver queued transactions, in commit order. Their RLS checks are made together:
        one query per (table, role, claims) for every ``RLS_CHUNK`` changes, not one per
        change, so a commit of many rows (or many small commits queued behind each other) costs
        a few round trips per subscriber identity. Returns the number of frames sent."""
        sent_before = self._frames
        waiting: list[_Step] = []  # from the first step that needs an RLS answer on
        for transaction in batch:
            commit = Commit(transaction.xid, self._admin)
            for change in transaction.changes:
                await asyncio.sleep(0)  # let socket writers drain between changes
                try:
                    steps = await self._plan(change, transaction, commit)
                except Exception:
                    _log_failure(change)
                    continue
                for step in steps:
                    if waiting or step.rls:
                        waiting.append(step)
                    else:
                        await self._emit_logged(step, {})
                if len(waiting) >= RLS_CHUNK:
                    await self._emit_waiting(waiting)
                    waiting = []
        await self._emit_waiting(waiting)
        return self._frames - sent_before

    async def _emit_waiting(self, waiting: Sequence[_Step]) -> None:
        """Emit ``waiting`` in order, with one RLS query per subscriber identity for all."""
        if not waiting:
            return
        answers = await self._rls_answers([step for step in waiting if step.rls])
        for step in waiting:
            await asyncio.sleep(0)
            await self._emit_logged(step, answers)

    async def _emit_logged(self, step: _Step, answers: _Answers) -> None:
        try:
            await self._emit(step, answers)
        except Exception:
            _log_failure(step.view.change)

    async def _plan(
        self, change: RowChange, transaction: Transaction, commit: Commit
    ) -> list[_Step]:
        """What one change owes each role of its subscribers, short of the RLS answer."""
        candidates = [
            s
            for s in self._registry.for_table(change.relation.oid)
            if s.start_lsn < transaction.end_lsn and s.action in ("*", change.kind)
        ]
        if not candidates:
            return []
        table = await self._catalog.table(change.relation, commit)
        view = _ChangeView(change, transaction, commit, table, Images.of(change))
        if all(s.select for s in candidates):  # every subscriber selects columns: encode those
            view.needed = frozenset(table.primary_key).union(*(s.select or () for s in candidates))
        steps: list[_Step] = []
        for role in sorted({s.claims.role for s in candidates}):
            subscriptions = [s for s in candidates if s.claims.role == role]
            selectable = await self._catalog.selectable(table, role, commit)
            error = _key_error(table, selectable) if change.kind != "DELETE" else None
            if error is not None:
                steps.append(_Step(view, selectable, subscriptions, error=error))
                continue
            visible = await self._filtered(view, subscriptions)
            if visible:
                rls = table.rls and change.kind != "DELETE"
                steps.append(_Step(view, selectable, visible, rls=rls))
        return steps

    async def _emit(self, step: _Step, answers: _Answers) -> None:
        view = step.view
        if step.error is not None:
            for group in _select_groups(step.subscriptions):
                self._fan_out(group, view.error_data(step.error))
            return
        visible = step.subscriptions
        if step.rls:
            key = view.key()
            visible = [s for s in visible if key in answers.get(_identity(view, s), ())]
        if not visible:
            return
        if view.encoded is None:
            view.encoded = await self._encoded(view)
        for group in _select_groups(visible):
            self._fan_out(group, view.data(view.encoded, step.selectable, group[0].select))

    def _fan_out(self, subscriptions: Sequence[Subscription], data_json: str) -> None:
        by_sink: dict[Sink, list[Subscription]] = {}
        for subscription in subscriptions:
            by_sink.setdefault(subscription.sink, []).append(subscription)
        if self._rate.limited:
            self._rate.drop("postgres_changes", len(by_sink))
            return
        self._rate.add(len(by_sink))
        self._frames += len(by_sink)
        for sink, items in by_sink.items():
            if len(items) == 1:
                ids = [items[0].binding_id]
            else:
                ordered = sorted(items, key=lambda s: s.binding_index, reverse=True)
                ids = [s.binding_id for s in ordered]
            sink.deliver(protocol.postgres_changes(sink.topic_json, ids, data_json))

    async def _filtered(
        self, view: _ChangeView, subscriptions: list[Subscription]
    ) -> list[Subscription]:
        if not any(s.conditions for s in subscriptions):
            return subscriptions
        results: dict[tuple[object, ...], bool] = {}
        pending: dict[tuple[object, ...], tuple[TypedCondition, str | None]] = {}
        for subscription in subscriptions:
            for typed in subscription.conditions:
                _resolve_fast(typed, view.images.match, results, pending)
        if pending:
            results.update(await self._evaluate(pending))
        return [
            s
            for s in subscriptions
            if all(results[_condition_key(t, view.images.match)] for t in s.conditions)
        ]

    async def _evaluate(
        self,
        pending: Mapping[_Key, tuple[TypedCondition, str | None]],
    ) -> dict[_Key, bool]:
        keys = list(pending)
        query = sql.SQL("select {}").format(
            sql.SQL(", ").join(expression(pending[key][0]) for key in keys)
        )
        args = [arg for key in keys for arg in parameters(*pending[key])]
        try:
            async with self._admin.connection() as conn:
                cursor = await conn.execute(query, args)
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            log.warning(
                "filter evaluation failed (%s); treating the filters as not matching",
                str(exc).strip(),
            )
            return dict.fromkeys(keys, False)
        assert row is not None
        return {key: bool(value) for key, value in zip(keys, row, strict=True)}

    async def _rls_answers(self, steps: Sequence[_Step]) -> _Answers:
        """For each (table, role, claims): which of the batch's rows it can SELECT *now*, like
        ``walrus_rls_stmt`` — in a snapshot that includes every transaction involved."""
        groups: dict[_Identity, tuple[TableInfo, set[_Row], dict[int, Commit]]] = {}
        for step in steps:
            for subscription in step.subscriptions:
                identity = _identity(step.view, subscription)
                entry = groups.setdefault(identity, (step.view.table, set(), {}))
                entry[1].add(step.view.key())
                entry[2][id(step.view.commit)] = step.view.commit
        answers: _Answers = {}
        for identity, (table, rows, commits) in groups.items():
            _, role, claims = identity
            visible, snapshot = await self._rls_check(table, role, claims, rows)
            unseen = [c for c in commits.values() if snapshot and not c.seen_in(snapshot)]
            if unseen:
                for commit in unseen:
                    await commit.visible()
                visible, _ = await self._rls_check(table, role, claims, rows)
            answers[identity] = visible
        return answers

    async def _rls_check(
        self, table: TableInfo, role: str, claims: str, rows: set[_Row]
    ) -> tuple[frozenset[_Row], str | None]:
        """The rows visible to the role and the snapshot the check ran in (``None``: failed)."""
        query = table.memo("rls", lambda: _visibility_query(table))
        columns = list(zip(*rows, strict=True))  # one array of values per key column
        try:
            async with self._api.connection() as conn:
                async with conn.pipeline(), conn.transaction(force_rollback=True):
                    await conn.execute(_SET_CLAIMS, (role, claims))
                    cursor = await conn.execute(query, [list(values) for values in columns])
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            log.warning(
                "RLS check on %s as %s failed: %s", table.qualified(), role, str(exc).strip()
            )
            return frozenset(), None
        assert row is not None
        found, snapshot = row
        return frozenset(tuple(key) for key in found or ()), str(snapshot)

    async def _encoded(self, view: _ChangeView) -> Encoded:
        """The JSON of the values the subscribers will see: only their selected columns when
        the change is surely under the size limit, otherwise all (the size is of all)."""
        needed = view.needed
        bound = _size_bound(view.table, view.images) if needed is not None else None
        if bound is not None and bound > MAX_RECORD_BYTES:
            needed = None
        record: dict[str, str] = {}
        old: dict[str, str] = {}
        pending: list[tuple[dict[str, str], str, str]] = []
        for image, target in ((view.images.record, record), (view.images.old, old)):
            for name, text in (image or {}).items():
                column = view.table.by_name.get(name)
                if column is None or (needed is not None and name not in needed):
                    continue
                encoded = "null" if text is None else fast_json(text, column.type.kind)
                target[name] = encoded or ""  # keeps column order; filled below if pending
                if encoded is None:
                    pending.append((target, name, str(text)))
        if pending:
            async with self._admin.connection() as conn:
                converted = await postgres_json(
                    conn, [(text, view.table.by_name[name].type) for _, name, text in pending]
                )
            for (target, name, _), value in zip(pending, converted, strict=True):
                target[name] = value
        if needed is not None and bound is not None:
            return Encoded(record, old, bound)  # under the limit, whatever the exact size
        return Encoded(record, old, _wal_bytes(view.table, record, old))


def _visibility_query(table: TableInfo) -> sql.Composed:
    """Which of the given primary keys the current role can SELECT, with the snapshot."""
    keys = [sql.Identifier(name) for name in table.primary_key]
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::text[]::{}").format(sql.Placeholder(), table.by_name[name].type.array_cast_sql)
        for name in table.primary_key
    )
    as_text = sql.SQL(", ").join(sql.SQL("{}::text").format(key) for key in keys)
    return sql.SQL(
        "select (select array_agg(array[{as_text}]) from {table}"
        " where ({keys}) in (select * from unnest({arrays}))), {snapshot}"
    ).format(
        as_text=as_text,
        table=sql.Identifier(table.schema, table.table),
        keys=sql.SQL(", ").join(keys),
        arrays=arrays,
        snapshot=sql.SQL(SNAPSHOT),
    )


def _size_bound(table: TableInfo, images: Images) -> int:
    """An upper bound of ``_wal_bytes`` from the text alone, without encoding: a character is at
    most 6 bytes of JSON (``\\u001f``), and a value has at most 2 more (its quotes)."""
    total = 0
    for image in (images.record, images.old):
        for name, text in (image or {}).items():
            column = table.by_name.get(name)
            if column is not None:
                total += _COLUMN_OVERHEAD + len(name) + len(column.type.name)
                total += 6 * len(text) + 2 if text is not None else 4
    return total


def _wal_bytes(table: TableInfo, record: Mapping[str, str], old: Mapping[str, str]) -> int:
    total = 0
    for image in (record, old):
        for name, value in image.items():
            total += _COLUMN_OVERHEAD + len(name) + len(table.by_name[name].type.name)
            total += len(value.encode())
    return total


def _condition_key(typed: TypedCondition, image: Mapping[str, str | None]) -> tuple[object, ...]:
    column = typed.condition.column
    return (*typed.key, column in image, image.get(column))


def _resolve_fast(
    typed: TypedCondition,
    image: Mapping[str, str | None],
    results: dict[tuple[object, ...], bool],
    pending: dict[tuple[object, ...], tuple[TypedCondition, str | None]],
) -> None:
    key = _condition_key(typed, image)
    if key in results or key in pending:
        return
    if typed.condition.column not in image:
        results[key] = False  # not in the image (e.g. unchanged TOAST): no match
        return
    value = image[typed.condition.column]
    outcome = fast_result(typed, value)
    if outcome is None:
        pending[key] = (typed, value)
    else:
        results[key] = outcome


def _key_error(table: TableInfo, selectable: frozenset[str]) -> str | None:
    if not table.primary_key:
        return _NO_PRIMARY_KEY
    if not all(name in selectable for name in table.primary_key):
        return _UNAUTHORIZED
    return None


def _select_groups(subscriptions: Iterable[Subscription]) -> list[list[Subscription]]:
    groups: dict[tuple[str, ...] | None, list[Subscription]] = {}
    for subscription in subscriptions:
        key = tuple(sorted(subscription.select)) if subscription.select else None
        groups.setdefault(key, []).append(subscription)
    return [groups[key] for key in sorted(groups, key=lambda k: ",".join(k or ()))]


_Row: TypeAlias = tuple[str | None, ...]  # a primary key, as text
_Identity: TypeAlias = tuple[int, str, str]  # (table, role, claims) of an RLS check
_Answers: TypeAlias = dict[_Identity, frozenset[_Row]]


@dataclass(slots=True)
class _Step:
    """One change for the subscribers of one role, waiting for its turn (and RLS answer)."""

    view: _ChangeView
    selectable: frozenset[str]
    subscriptions: list[Subscription]
    error: str | None = None
    rls: bool = False


def _identity(view: _ChangeView, subscription: Subscription) -> _Identity:
    return (id(view.table), subscription.claims.role, subscription.claims.json)


def _log_failure(change: RowChange) -> None:
    log.exception(
        "could not deliver a %s on %s.%s",
        change.kind,
        change.relation.schema,
        change.relation.table,
    )


class _ChangeView:
    """One change on one table, rendered for the views its subscribers need."""

    def __init__(
        self,
        change: RowChange,
        transaction: Transaction,
        commit: Commit,
        table: TableInfo,
        images: Images,
    ) -> None:
        self.change = change
        self.commit = commit
        self.table = table
        self.images = images
        self.encoded: Encoded | None = None
        #: The columns every subscriber's ``select`` asks for, with the key; None: all of them.
        self.needed: frozenset[str] | None = None
        self._head = (
            f'"schema":{string(table.schema)},"table":{string(table.table)},"type":"{change.kind}"'
        )
        self._timestamp = transaction.commit_timestamp

    def key(self) -> _Row:
        record = self.images.record or {}
        return tuple(record.get(name) for name in self.table.primary_key)

    def error_data(self, errors: str) -> str:
        tail = ',"record":{}' if self.change.kind in ("INSERT", "UPDATE") else ""
        if self.change.kind != "INSERT":
            tail += ',"old_record":{}'
        return f'{{{self._head},"columns":[],"commit_timestamp":null,"errors":{errors}{tail}}}'

    def data(
        self, encoded: Encoded, selectable: frozenset[str], select: Sequence[str] | None
    ) -> str:
        keys = self.table.key_set

        def shown(name: str) -> bool:
            return name in selectable and (select is None or name in select or name in keys)

        columns = self.table.memo(
            ("columns", selectable, tuple(select or ())),
            lambda: ",".join(
                f'{{"name":{string(c.name)},"type":{string(c.type.name)}}}'
                for c in self.table.columns
                if shown(c.name)
            ),
        )
        errors = _TOO_LARGE if encoded.too_large else "null"
        parts = [
            f'{{{self._head},"commit_timestamp":"{self._timestamp}","columns":[{columns}]',
            f',"errors":{errors}',
        ]
        if self.change.kind != "DELETE":
            parts.append(f',"record":{_object(encoded.record, shown, encoded.too_large)}')
        if self.change.kind == "UPDATE":
            parts.append(f',"old_record":{_object(encoded.old, shown, encoded.too_large)}')
        if self.change.kind == "DELETE":

            def old_shown(name: str) -> bool:
                return shown(name) and (not self.table.rls or name in keys)

            parts.append(f',"old_record":{_object(encoded.old, old_shown, encoded.too_large)}')
        parts.append("}")
        return "".join(parts)


def _object(values: Mapping[str, str], shown: Callable[[str], bool], trimmed: bool) -> str:
    items = ",".join(
        f"{json_name(column)}:{value}"
        for column, value in values.items()
        if shown(column) and (not trimmed or len(value.encode()) <= _TRIMMED_FIELD_BYTES)
    )
    return "{" + items + "}"
