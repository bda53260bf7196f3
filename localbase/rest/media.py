"""The ``Accept`` header, parsed as media types with parameters and weights, and the
representation PostgREST would choose for it.

Offered: JSON arrays (``application/json``, ``application/vnd.pgrst.array+json``), single
objects (``application/vnd.pgrst.object+json``), both with ``nulls=stripped``, and CSV
(``text/csv``). Execution plans (``application/vnd.pgrst.plan…``) are not offered, as on hosted
Supabase where ``db-plan-enabled`` is off: asking only for one is ``406 PGRST107``.
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


@dataclass(frozen=True)
class Representation:
    kind: str  # "json" | "object" | "csv"
    strip_nulls: bool = False

    @property
    def singular(self) -> bool:
        return self.kind == "object"


JSON = Representation("json")


def negotiate(accept: str) -> Representation:
    """The first acceptable representation, by weight then by order; PGRST107 when none."""
    if not accept.strip():
        return JSON
    offers: list[tuple[float, int, str, Representation | None]] = []
    items = [item for item in accept.split(",") if item.strip()]
    for index, item in enumerate(items[:MAX_ACCEPT_ITEMS]):
        kind, params = _media_type(item)
        weight = _weight(params.get("q"))
        if weight > 0:
            offers.append((-weight, index, item.strip(), _representation(kind, params)))
    for _, _, _, representation in sorted(offers, key=lambda o: (o[0], o[1])):
        if representation is not None:
            return representation
    listed = ", ".join(item.strip() for item in items[:MAX_ACCEPT_ITEMS])
    raise RestError(406, "PGRST107", f"None of these media types are available: {listed}")


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
