"""``/rest/v1``: PostgREST's HTTP semantics over the parsed query and the SQL builder."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase import strict_json
from localbase.auth import ApiKeyError, AuthError, ClaimTextError, Identity, request_identity
from localbase.db import Database, DatabaseUnavailable, PoolExhausted, RequestContext
from localbase.rest import aggregates, embedding, media, statements
from localbase.rest.catalog import Catalog, Function, Table
from localbase.rest.config import InDatabaseConfig
from localbase.rest.errors import (
    JSON_TYPE,
    RestError,
    body_error,
    connection_lost_error,
    from_postgres,
    jwt_error,
    pool_timeout_error,
    unavailable_error,
)
from localbase.rest.exposure import Exposure
from localbase.rest.query import CountItem, ReadQuery, SelectItem, parse_query
from localbase.strict_json import JsonInputError

log = logging.getLogger("localbase.rest")

MAX_BODY_BYTES = 10 * 1024 * 1024
#: Bodies larger than this are decoded in a worker thread, not on the event loop.
_THREAD_PARSE_BYTES = 256 * 1024
SINGULAR = media.SINGULAR


#: Supabase's ``db-max-rows``: ``count=estimated`` counts exactly up to it.
MAX_ROWS = 1000


def planned_rows(plan: Any) -> int:
    """The top node's row estimate in ``EXPLAIN (FORMAT JSON)`` output."""
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0]["Plan"]["Plan Rows"])


@dataclass(frozen=True)
class Prefer:
    representation: bool = True
    count: bool = False
    count_method: str | None = None  # exact, planned or estimated
    resolution: str | None = None
    missing_default: bool = False
    max_affected: int | None = None
    #: ``tx=rollback``: the request runs and answers, and its transaction is rolled back (as
    #: PostgREST with ``db-tx-end=commit-allow-override``; never committed silently).
    rollback: bool = False
    strict: bool = False

    @classmethod
    def parse(cls, header: str, *, default_representation: bool) -> Prefer:
        items = dict(part.strip().partition("=")[::2] for part in header.split(",") if part.strip())
        strict = items.get("handling") == "strict"
        if strict:
            invalid = [
                f"{k}={v}" if v else k
                for k, v in items.items()
                if v not in _PREFERENCES.get(k, frozenset({v}) if k in _FREE_PREFERENCES else ())
            ]
            if invalid:
                raise RestError(
                    400,
                    "PGRST122",
                    "Invalid preferences given with handling=strict",
                    "Invalid preferences: " + ", ".join(invalid),
                )
        max_affected = None
        limit = items.get("max-affected", "")
        if items.get("handling") == "strict" and limit.isascii() and limit.isdigit():
            max_affected = int(limit[:19])
        representation = default_representation
        if "return" in items:
            representation = items["return"] == "representation"
        count_method = items.get("count")
        if count_method not in {"exact", "planned", "estimated"}:
            count_method = None
        return cls(
            representation,
            count_method is not None,
            count_method,
            items.get("resolution"),
            items.get("missing") == "default",
            max_affected,
            items.get("tx") == "rollback",
            strict,
        )

    @property
    def applied(self) -> dict[str, str]:
        return {"Preference-Applied": "tx=rollback"} if self.rollback else {}


_PREFERENCES = {
    "return": frozenset({"representation", "minimal", "headers-only"}),
    "count": frozenset({"exact", "planned", "estimated"}),
    "resolution": frozenset({"merge-duplicates", "ignore-duplicates"}),
    "missing": frozenset({"default", "null"}),
    "handling": frozenset({"strict", "lenient"}),
    "tx": frozenset({"commit", "rollback"}),
    "params": frozenset({"single-object"}),
}
_FREE_PREFERENCES = frozenset({"max-affected", "timezone"})


class RolledBack(Exception):
    """Raised after a ``tx=rollback`` request's checks: the database rolls back, the answer
    is built from the row it had produced."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        super().__init__("rolled back")
        self.row = row


def api_key_error(exc: ApiKeyError) -> Response:
    return JSONResponse({"message": exc.message, "hint": exc.hint}, status_code=401)


class RestApi:
    def __init__(self, db: Database, exposure: Exposure | None = None) -> None:
        self.db = db
        self.exposure = Exposure.from_config() if exposure is None else exposure
        self._catalog: Catalog | None = None
        #: The in-database configuration, loaded with the catalog.
        self.config = InDatabaseConfig()
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the schema cache and the in-database configuration (``NOTIFY pgrst``, both
        ``'reload schema'`` and ``'reload config'``); the next request loads them again."""
        self._catalog = None

    async def reload(self) -> Catalog:
        self._catalog = None
        return await self.catalog()

    async def catalog(self) -> Catalog:
        catalog = self._catalog
        if catalog is None:
            async with self._lock:
                if self._catalog is None:
                    async with self.db.connection() as conn:
                        self.config = await InDatabaseConfig.load(conn)
                        self._catalog = await Catalog.load(conn, self.exposure.schemas)
                catalog = self._catalog
        return catalog

    async def handle(self, request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            identity = request_identity(request.headers, request.query_params)
        except ApiKeyError as exc:
            return api_key_error(exc)
        except AuthError as exc:
            return jwt_error(exc.message, exc.code).response(head=head)
        except ClaimTextError as exc:
            return RestError(400, exc.sqlstate, exc.message, exc.detail).response(head=head)
        try:
            response = await self._dispatch(request, identity)
        except RestError as exc:
            return exc.response(head=head)
        except DatabaseUnavailable as exc:
            return unavailable_error(exc.reason).response(head=head)
        except PoolExhausted:
            return pool_timeout_error().response(head=head)
        except psycopg.OperationalError as exc:
            if exc.sqlstate is None:  # the connection died under the request
                return connection_lost_error(str(exc)).response(head=head)
            return from_postgres(exc, identity.role).response(head=head)
        except psycopg.Error as exc:
            return from_postgres(exc, identity.role).response(head=head)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return RestError(500, "PGRST000", "Internal server error").response(head=head)
        return self.exposure.label(request.method, request.headers, response)

    async def _dispatch(self, request: Request, identity: Identity) -> Response:
        path = request.path_params["path"].strip("/")
        schema = self.exposure.schema(request.method, request.headers)
        catalog = await self.catalog()
        representation = media.negotiate(
            request.headers.get("accept", "*/*"), plans=self.config.db_plan_enabled
        )
        singular = representation.singular
        plan = representation.plan
        params = request.query_params.multi_items()
        if path.startswith("rpc/"):
            function_name = path.removeprefix("rpc/")
            response = await self._rpc(
                request, identity, schema, catalog, function_name, params, singular, plan
            )
            return _represent(response, representation)
        if not path or "/" in path:
            raise RestError(404, "PGRST125", f"Invalid path specified in request URL: /{path}")
        table = catalog.tables.get((schema, path))
        if table is None:
            # DDL may have committed a moment before its reload notification arrives.
            catalog = await self.reload()
            table = catalog.tables.get((schema, path))
        if table is None:
            raise RestError(
                404,
                "PGRST205",
                f"Could not find the table '{schema}.{path}' in the schema cache",
                hint=catalog.suggest_table(schema, path),
            )
        query = self._parse(params)
        ctx = self._context(request, identity, schema, read_only=request.method in {"GET", "HEAD"})
        if request.method in {"GET", "HEAD"}:
            prefer = Prefer.parse(request.headers.get("prefer", ""), default_representation=True)
            bindings = statements.Bindings()
            csv = representation.kind == "csv"
            exact = prefer.count and prefer.count_method != "planned"
            read = embedding.read(catalog, table, query, count=exact, bindings=bindings, csv=csv)
            if plan is not None:
                return await self._explain(ctx, bindings.statement(read), plan, prefer)
            if prefer.count_method in {"planned", "estimated"}:
                estimate = statements.Bindings()
                rows = estimate.statement(embedding.counted_rows(catalog, table, query, estimate))
                response = await self._run_estimated_read(
                    ctx, bindings.statement(read), rows, query, prefer, singular
                )
            else:
                response = await self._run_read(
                    ctx, bindings.statement(read), query, prefer, singular
                )
            return _represent(response, representation)
        if request.method == "POST":
            return _represent(
                await self._insert(request, ctx, catalog, table, query, singular, plan),
                representation,
            )
        if request.method == "PATCH":
            prefer = Prefer.parse(request.headers.get("prefer", ""), default_representation=False)
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise body_error()
            statement = statements.update(
                table,
                query,
                body,
                representation=prefer.representation,
                shape=_write_shape(catalog, table, query),
            )
            return _represent(
                await self._run_write(ctx, statement, prefer, singular, "update", plan),
                representation,
            )
        if request.method == "DELETE":
            prefer = Prefer.parse(request.headers.get("prefer", ""), default_representation=False)
            statement = statements.delete(
                table,
                query,
                representation=prefer.representation,
                shape=_write_shape(catalog, table, query),
            )
            return _represent(
                await self._run_write(ctx, statement, prefer, singular, "delete", plan),
                representation,
            )
        raise RestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")

    def _parse(self, params: list[tuple[str, str]], *, rpc: bool = False) -> ReadQuery:
        """The query, refused with PGRST123 when it aggregates and aggregates are off."""
        query = parse_query(params, rpc=rpc)
        if not self.config.db_aggregates_enabled:
            aggregates.forbid(query)
        return query

    def _context(
        self, request: Request, identity: Identity, schema: str, *, read_only: bool
    ) -> RequestContext:
        return RequestContext(
            identity,
            request.method,
            request.url.path,
            request.headers,
            schema,
            read_only=read_only,
            extra_search_path=self.exposure.extra_search_path,
        )

    async def _insert(
        self,
        request: Request,
        ctx: RequestContext,
        catalog: Catalog,
        table: Table,
        query: ReadQuery,
        singular: bool,
        plan: media.Plan | None = None,
    ) -> Response:
        prefer = Prefer.parse(request.headers.get("prefer", ""), default_representation=False)
        body = await _json_body(request)
        rows = [body] if isinstance(body, dict) else body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise body_error()
        if query.columns is None and any(set(r) != set(rows[0]) for r in rows):
            raise body_error("All object keys must match")
        if query.on_conflict is not None and prefer.resolution is None:
            prefer = replace(prefer, resolution=None)
        statement = statements.insert(
            table,
            query,
            rows,
            representation=prefer.representation,
            count=prefer.count,
            resolution=prefer.resolution,
            missing_default=prefer.missing_default,
            shape=_write_shape(catalog, table, query),
        )
        if not rows and plan is None:
            return _mutation_response(
                200 if prefer.resolution else 201, "[]", 0, prefer, singular, "insert"
            )
        return await self._run_write(ctx, statement, prefer, singular, "insert", plan)

    async def _run_read(
        self,
        ctx: RequestContext,
        statement: statements.Statement,
        query: ReadQuery,
        prefer: Prefer,
        singular: bool,
    ) -> Response:
        row = await self.db.fetch_one(ctx, statement.query, statement.params)
        assert row is not None
        total, page, body = row[0], int(row[1]), row[2]
        return _read_response(
            ctx.method == "HEAD", total, page, body, query.offset, prefer, singular
        )

    async def _run_estimated_read(
        self,
        ctx: RequestContext,
        statement: statements.Statement,
        rows: statements.Statement,
        query: ReadQuery,
        prefer: Prefer,
        singular: bool,
    ) -> Response:
        """``count=planned``: the planner's estimate of the rows (EXPLAIN, as the request's
        role, so RLS is in the plan); ``count=estimated``: the exact count up to
        ``db-max-rows``, the planner's estimate above it."""
        async with self.db.transaction(ctx) as conn:
            row = await (await conn.execute(statement.query, statement.params)).fetchone()
            assert row is not None
            total, page, body = row[0], int(row[1]), row[2]
            if prefer.count_method == "planned" or total > MAX_ROWS:
                explain = sql.SQL("explain (format json) ") + rows.query
                plan = await (await conn.execute(explain, rows.params)).fetchone()
                assert plan is not None
                total = planned_rows(plan[0])
        return _read_response(
            ctx.method == "HEAD", total, page, body, query.offset, prefer, singular
        )

    async def _run_write(
        self,
        ctx: RequestContext,
        statement: statements.Statement,
        prefer: Prefer,
        singular: bool,
        kind: str,
        plan: media.Plan | None = None,
    ) -> Response:
        if plan is not None:
            return await self._explain(ctx, statement, plan, prefer)

        def check(row: tuple[Any, ...]) -> None:
            page = int(row[1])
            if singular and page != 1:
                raise _singular_error(page)
            if prefer.max_affected is not None and page > prefer.max_affected:
                raise RestError(
                    400,
                    "PGRST124",
                    "Query result exceeds max-affected preference constraint",
                    f"The query affects {page} rows",
                )

        needs_check = singular or prefer.max_affected is not None
        row = await self._fetch(ctx, statement, prefer, check if needs_check else None)
        page, body, inserted = int(row[1]), row[2], row[3]
        status = (
            200
            if inserted is False or (prefer.resolution == "merge-duplicates" and not page)
            else 201
        )
        response = _mutation_response(status, body, page, prefer, singular, kind)
        response.headers.update(prefer.applied)
        return response

    async def _explain(
        self,
        ctx: RequestContext,
        statement: statements.Statement,
        plan: media.Plan,
        prefer: Prefer,
    ) -> Response:
        """``EXPLAIN (FORMAT …, <options>)`` of the request's statement, in its transaction
        and as its role (so RLS is in the plan). As in PostgREST, ``analyze`` runs the
        statement, and a write is committed unless ``Prefer: tx=rollback`` asks otherwise."""
        explain = sql.SQL("explain ({}) ").format(sql.SQL(plan.explain_options)) + statement.query
        try:
            async with self.db.transaction(ctx) as conn:
                cursor = conn.cursor()
                cursor.adapters.register_loader("json", TextLoader)
                await cursor.execute(explain, statement.params)
                rows = tuple(row[0] for row in await cursor.fetchall())
                if prefer.rollback:
                    raise RolledBack(rows)
        except RolledBack as exc:
            rows = exc.row
        body = "".join(f"{line}\n" for line in rows)
        response = Response(
            b"" if ctx.method == "HEAD" else body.encode(),
            media_type=plan.content_type,
        )
        response.headers.update(prefer.applied)
        return response

    async def _fetch(
        self,
        ctx: RequestContext,
        statement: statements.Statement,
        prefer: Prefer,
        check: Callable[[tuple[Any, ...]], None] | None,
    ) -> tuple[Any, ...]:
        """Run a write; with ``tx=rollback`` its transaction is rolled back after the checks."""

        def checked(row: tuple[Any, ...]) -> None:
            if check is not None:
                check(row)
            if prefer.rollback:
                raise RolledBack(row)

        try:
            row = await self.db.fetch_one(
                ctx,
                statement.query,
                statement.params,
                checked if check is not None or prefer.rollback else None,
            )
        except RolledBack as exc:
            return exc.row
        assert row is not None
        return row

    async def _rpc(
        self,
        request: Request,
        identity: Identity,
        schema: str,
        catalog: Catalog,
        name: str,
        params: list[tuple[str, str]],
        singular: bool,
        plan: media.Plan | None = None,
    ) -> Response:
        method = request.method
        if method not in {"GET", "HEAD", "POST"}:
            raise RestError(405, "PGRST101", f"Cannot use the {method} method on RPC")
        query = self._parse(params, rpc=method != "POST")
        if method == "POST":
            raw = await _json_body(request, empty_ok=True)
            body: Any = {} if raw is None else raw
        else:
            body = dict(query.arguments)
        try:
            function = _resolve(catalog, schema, name, body, json_body=method == "POST")
        except RestError:
            catalog = await self.reload()
            function = _resolve(catalog, schema, name, body, json_body=method == "POST")
        arguments = _arguments(function, body)
        prefer = Prefer.parse(request.headers.get("prefer", ""), default_representation=True)
        rows = None
        if embedding.needs_reader(query) and not _aggregates_only(catalog, function, query):
            rows = embedding.function_rows(catalog, function, query, count=prefer.count)
        statement, shape = statements.call(
            function,
            arguments,
            query,
            count=prefer.count,
            json_arguments=method == "POST",
            rows=rows,
        )
        read_only = method != "POST" or function.volatility in {"i", "s"}
        ctx = self._context(request, identity, schema, read_only=read_only)

        if prefer.max_affected is not None and shape != "set":
            raise RestError(
                400,
                "PGRST128",
                "Function must return SETOF or TABLE when max-affected preference is used "
                "with handling=strict",
            )

        def check(row: tuple[Any, ...]) -> None:
            if shape != "set":
                return
            if singular and row[1] != 1:
                raise _singular_error(int(row[1]))
            if prefer.max_affected is not None and int(row[1]) > prefer.max_affected:
                raise RestError(
                    400,
                    "PGRST124",
                    "Query result exceeds max-affected preference constraint",
                    f"The query affects {row[1]} rows",
                )

        if plan is not None:
            return await self._explain(ctx, statement, prefer=prefer, plan=plan)
        needs_check = shape == "set" and (singular or prefer.max_affected is not None)
        row = await self._fetch(ctx, statement, prefer, check if needs_check else None)
        response = _rpc_response(method == "HEAD", shape, row, query, prefer, singular)
        response.headers.update(prefer.applied)
        return response


def _aggregates_only(catalog: Catalog, function: Function, query: ReadQuery) -> bool:
    """A function's result that is not a table's rows, read with aggregates but nothing to
    embed: the call's own select groups it (``rpc/fn?select=username.count(),status``)."""
    return (
        function.return_relation not in catalog.tables
        and not query.embedded
        and all(isinstance(item, SelectItem | CountItem) for item in query.select)
        and all(term.relation is None for term in query.order)
    )


def _rpc_response(
    head: bool,
    shape: str,
    row: tuple[Any, ...],
    query: ReadQuery,
    prefer: Prefer,
    singular: bool,
) -> Response:
    if shape == "void":
        return Response(status_code=204)
    # A single value is one row: PostgREST's Content-Range says so, with the total when counted.
    single_range = {"Content-Range": "0-0/1" if prefer.count else "0-0/*"}
    if shape == "scalar":
        return _json(200, row[0] if row[0] is not None else "null", head=head, headers=single_range)
    if shape == "object":
        _total, page, body_text, _ = row
        return _json(200, _first(body_text) if page else "null", head=head, headers=single_range)
    total, page, body_text, _ = row
    return _read_response(head, total, page, body_text, query.offset, prefer, singular)


async def _json_body(request: Request, *, empty_ok: bool = False) -> Any:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY_BYTES:
        raise RestError(
            413, "PGRST413", "Request body too large", f"The limit is {MAX_BODY_BYTES} bytes"
        )
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise RestError(
            413, "PGRST413", "Request body too large", f"The limit is {MAX_BODY_BYTES} bytes"
        )
    if not raw.strip():
        if empty_ok:
            return None
        raise body_error()
    try:
        if len(raw) > _THREAD_PARSE_BYTES:
            return await asyncio.to_thread(strict_json.loads, raw)
        return strict_json.loads(raw)
    except JsonInputError as exc:
        if exc.sqlstate is None:
            raise body_error() from exc
        raise RestError(400, exc.sqlstate, exc.message, exc.detail) from exc


def _resolve(catalog: Catalog, schema: str, name: str, body: Any, *, json_body: bool) -> Function:
    """PostgREST's choice among overloads: the functions whose parameter names fit the
    arguments; failing that (POST), one with a single unnamed json/jsonb parameter."""
    candidates = [f for f in catalog.functions.get((schema, name), []) if f.exposed]
    names = set(body) if isinstance(body, dict) else set()
    matches = [f for f in candidates if isinstance(body, dict) and f.accepts(names)]
    if not matches and json_body:
        matches = [f for f in candidates if f.single_unnamed_json]
    if len(matches) > 1 and json_body and names == {""}:
        matches = [f for f in matches if f.parameters[0].type == "text"] or matches
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RestError(
            300,
            "PGRST203",
            "Could not choose the best candidate function between: "
            + ", ".join(
                f"{schema}.{name}({', '.join(f'{p.name} => {p.type}' for p in f.parameters)})"
                for f in sorted(matches, key=lambda f: [(p.name, p.type) for p in f.parameters])
            ),
            hint="Try renaming the parameters or the function itself in the database so "
            "function overloading can be resolved",
        )
    listed = ", ".join(sorted(names))
    signature = f"{schema}.{name}({listed})" if names else f"{schema}.{name} without parameters"
    with_params = (
        f"with parameter{'s' if len(names) > 1 else ''} {listed}" if names else "without parameters"
    )
    unnamed = " or with a single unnamed json/jsonb parameter" if json_body else ""
    raise RestError(
        404,
        "PGRST202",
        f"Could not find the function {signature} in the schema cache",
        f"Searched for the function {schema}.{name} {with_params}{unnamed}, but no matches "
        "were found in the schema cache.",
        catalog.suggest_function(schema, name, names),
    )


def _arguments(function: Function, body: Any) -> dict[str, str | None]:
    if function.single_unnamed_json and not (
        isinstance(body, dict) and function.accepts(set(body))
    ):
        return {"": json.dumps(body)}
    assert isinstance(body, dict)
    kinds = {p.name: p for p in function.parameters}
    return {
        name: statements.argument_text(value, kinds[name].type, composite=kinds[name].composite)
        for name, value in body.items()
    }


def _represent(response: Response, representation: media.Representation) -> Response:
    """``nulls=stripped`` and CSV applied to a JSON response the statement produced."""
    if response.status_code >= 300 or not response.body or representation.plan is not None:
        return response
    if representation.kind == "csv" and response.media_type == JSON_TYPE:
        response.headers["content-type"] = "text/csv; charset=utf-8"
        return response
    if not representation.strip_nulls:
        return response
    stripped = json.loads(bytes(response.body), object_pairs_hook=_without_nulls)
    body = json.dumps(stripped, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    suffix = ";nulls=stripped"
    headers["content-type"] = headers.get("content-type", JSON_TYPE).replace(
        "; charset", suffix + "; charset", 1
    )
    return Response(body, status_code=response.status_code, headers=headers)


def _without_nulls(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if value is not None}


def _write_shape(catalog: Catalog, table: Table, query: ReadQuery) -> statements.Shape | None:
    """How a write's rows come back when its ``select`` embeds resources (else None)."""
    if not embedding.has_embeds(query.select) and not query.embedded:
        return None
    return embedding.after_write(catalog, table, query)


def _singular_error(rows: int) -> RestError:
    return RestError(
        406,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        f"The result contains {rows} rows",
    )


def _first(body: str) -> str:
    return body.strip()[1:-1].strip()


def _json(
    status: int,
    body: str,
    *,
    head: bool = False,
    headers: Mapping[str, str] | None = None,
    content_type: str = JSON_TYPE,
) -> Response:
    return Response(
        b"" if head else body.encode(),
        status_code=status,
        headers=dict(headers or {}),
        media_type=content_type,
    )


def _read_response(
    head: bool, total: int | None, page: int, body: str, offset: int, prefer: Prefer, singular: bool
) -> Response:
    total_text = "*" if total is None else str(total)
    if total is not None and offset > total and total > 0:
        raise RestError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            f"An offset of {offset} was requested, but there are only {total} rows.",
            headers={"Content-Range": f"*/{total}"},
        )
    content_range = f"{offset}-{offset + page - 1}/{total_text}" if page else f"*/{total_text}"
    status = 200
    if total is not None and (page < total) and total != 0:
        status = 206
    if singular:
        if page != 1:
            raise _singular_error(page)
        return _json(
            200,
            _first(body),
            head=head,
            headers={"Content-Range": content_range},
            content_type=f"{SINGULAR}; charset=utf-8",
        )
    return _json(status, body, head=head, headers={"Content-Range": content_range})


def _mutation_response(
    status: int, body: str, page: int, prefer: Prefer, singular: bool, kind: str
) -> Response:
    count = str(page) if prefer.count else "*"
    content_range = f"0-{page - 1}/{count}" if kind == "update" and page else f"*/{count}"
    headers = {"Content-Range": content_range}
    if kind != "insert":
        status = 200
    if not prefer.representation:
        return Response(status_code=204 if kind != "insert" else status, headers=headers)
    if singular:
        return _json(
            status, _first(body), headers=headers, content_type=f"{SINGULAR}; charset=utf-8"
        )
    return _json(status, body, headers=headers)
