"""The ``Accept`` header, parsed as media types with parameters and weights, and the
representation PostgREST would choose for it.

Offered: JSON arrays (``application/json``, ``application/vnd.pgrst.array+json``), single
objects (``application/vnd.pgrst.object+json``), both with ``nulls=stripped``, and CSV
(``text/csv``). Execution plans (``application/vnd.pgrst.plan[+json|+text]; for="…";
options=analyze|…``) are offered only when ``db-plan-enabled`` is on (off by default, as on
hosted Supabase): otherwise asking only for one is ``406 PGRST107``.
"""

from __future__ import annotations

from dataclasses import dataclass

from localbase.rest.errors import RestError

SINGULAR = "application/vnd.pgrst.object+json"
JSON_TYPES = frozenset(
    {
        "*/*",
        "application/*",
        "application/json",
        "application/vnd.pgrst.array+json",
        "application/vnd.pgrst.array",
    }
)
OBJECT_TYPES = frozenset({SINGULAR, "application/vnd.pgrst.object"})
CSV_TYPES = frozenset({"text/csv"})
MAX_ACCEPT_ITEMS = 64
PLAN_TYPES = {
    "application/vnd.pgrst.plan": "text",
    "application/vnd.pgrst.plan+text": "text",
    "application/vnd.pgrst.plan+json": "json",
}
#: EXPLAIN options a plan may ask for, in the order PostgREST passes them.
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


@dataclass(frozen=True)
class Plan:
    """``application/vnd.pgrst.plan``: the EXPLAIN output of the statement that would answer
    ``target`` (``for="…"``, ``application/json`` by default)."""

    format: str  # "json" | "text"
    target: str
    options: tuple[str, ...] = ()

    @property
    def explain_options(self) -> str:
        """``FORMAT JSON, ANALYZE, …`` (only names from fixed lists)."""
        return ", ".join([f"FORMAT {self.format.upper()}", *(o.upper() for o in self.options)])

    @property
    def content_type(self) -> str:
        options = f"; options={'|'.join(self.options)}" if self.options else ""
        return (
            f'application/vnd.pgrst.plan+{self.format}; for="{self.target}"{options}; charset=utf-8'
        )


@dataclass(frozen=True)
class Representation:
    kind: str  # "json" | "object" | "csv"
    strip_nulls: bool = False
    #: Set when the plan of the statement is asked for instead of its result.
    plan: Plan | None = None

    @property
    def singular(self) -> bool:
        return self.kind == "object"

    @property
    def mime(self) -> str:
        """The media type as PostgREST names it (a plan's ``for``)."""
        if self.kind == "object":
            return SINGULAR + (";nulls=stripped" if self.strip_nulls else "")
        if self.kind == "csv":
            return "text/csv"
        return (
            "application/vnd.pgrst.array+json;nulls=stripped"
            if self.strip_nulls
            else ("application/json")
        )


JSON = Representation("json")


def negotiate(accept: str, *, plans: bool = False) -> Representation:
    """The first acceptable representation, by weight then by order; PGRST107 when none.
    Plans are acceptable only with ``plans`` (``db-plan-enabled``)."""
    if not accept.strip():
        return JSON
    offers: list[tuple[float, int, str, Representation | None]] = []
    items = [item for item in accept.split(",") if item.strip()]
    for index, item in enumerate(items[:MAX_ACCEPT_ITEMS]):
        kind, params = _media_type(item)
        weight = _weight(params.get("q"))
        if weight > 0:
            representation = _representation(kind, params)
            if kind in PLAN_TYPES and plans:
                representation = _plan(kind, params)
            offers.append((-weight, index, item.strip(), representation))
    for _, _, _, representation in sorted(offers, key=lambda o: (o[0], o[1])):
        if representation is not None:
            return representation
    listed = ", ".join(item.strip() for item in items[:MAX_ACCEPT_ITEMS])
    raise RestError(406, "PGRST107", f"None of these media types are available: {listed}")


def _plan(kind: str, params: dict[str, str]) -> Representation | None:
    """PostgREST's reading of a plan media type: ``for`` names a representation this API
    offers (else nothing is acceptable); unknown ``options`` are ignored."""
    target_kind, target_params = _media_type(params.get("for", "application/json"))
    target = _representation(target_kind, target_params)
    if target is None:
        return None
    asked = set(params.get("options", "").split("|"))
    options = tuple(option for option in PLAN_OPTIONS if option in asked)
    plan = Plan(PLAN_TYPES[kind], target.mime if target_kind != "*/*" else "*/*", options)
    return Representation(target.kind, target.strip_nulls, plan)


def _media_type(item: str) -> tuple[str, dict[str, str]]:
    kind, *raw = item.split(";")
    params = {}
    for part in raw:
        name, _, value = part.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _weight(text: str | None) -> float:
    if text is None:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        return 1.0
    return value if 0.0 <= value <= 1.0 else 1.0


def _representation(kind: str, params: dict[str, str]) -> Representation | None:
    strip = params.get("nulls") == "stripped"
    if kind in OBJECT_TYPES:
        return Representation("object", strip)
    if kind in JSON_TYPES:
        return Representation("json", strip and kind != "*/*")
    if kind in CSV_TYPES:
        return Representation("csv")
    return None
