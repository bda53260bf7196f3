"""The PostgREST query-string grammar (spec ``postgrest.md`` §5.3), parsed into typed nodes.

Nothing here touches SQL: the builder turns these nodes into statements with quoted
identifiers and bound values.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from localbase.rest.errors import RestError, parse_error

SIMPLE_OPS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "match",
        "imatch",
        "cs",
        "cd",
        "ov",
        "sl",
        "sr",
        "nxr",
        "nxl",
        "adj",
        "isdistinct",
    }
)
QUANTIFIABLE_OPS = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
FTS_OPS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
RESERVED = frozenset({"select", "columns", "on_conflict", "apikey"})
LOGIC_KEYS = frozenset({"or", "and", "not.or", "not.and"})

#: Longest parameter name (a column and its JSON path) and longest value of a structural
#: parameter (``select``, ``order``, ``columns``, ``on_conflict``, logic trees). Filter values
#: are only bounded by the query string (``localbase.limits``): they are scanned once.
MAX_NAME_CHARS = 1024
MAX_STRUCTURE_CHARS = 16 * 1024
#: Deepest ``and(or(…))`` nesting of a logic tree.
MAX_LOGIC_DEPTH = 32
_STRUCTURAL = frozenset({"select", "order", "columns", "on_conflict", "limit", "offset"})

_OP_RE = re.compile(r"(?P<op>[a-z_]+)(?:\((?P<arg>[a-z_]+)\))?")
_LOGIC_OPEN_RE = re.compile(r"(not\.)?(and|or)\(")
_CAST_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Field names and JSON paths (PostgREST's ``[a..z0..9_$]``, letters in any script). A ``-``
# belongs to a name only when another name character follows it.
_W = r"[A-Za-z0-9_$\u0080-\U0010ffff]"
_K = r"[A-Za-z0-9_$ \u0080-\U0010ffff]"
_KEY = rf"""(?>'([^']+)'|"([^"]+)"|(-?[0-9]++(?=->|\Z)|{_K}++(?:-{_K}++)*+))"""
_FIELD_PREFIX = re.compile(rf'(?P<name>"[^"]+"|{_W}++(?:-{_W}++)*+)?(?:->>?{_KEY})*+')
_STEP = re.compile(rf"(->>?){_KEY}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_$]++")
_EMBED_NAME = re.compile(rf'"[^"]+"|{_W}++(?:-{_W}++)*+')
_ORDER_RELATION = re.compile(rf"(?P<rel>{_W}++)\((?P<field>[^()]*+)\)")
#: ``….sum()`` or ``….sum()::type`` at the end of a select item whose head has no parenthesis.
_AGGREGATE_TAIL = re.compile(
    r"(?P<head>[^()]+?)\.(?P<function>sum|avg|count|max|min)\(\)(?:::(?P<cast>[^:()]*+))?"
)
#: Deepest nesting of embedded resources in ``select``.
MAX_EMBED_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Field:
    """A column, optionally followed by a JSON path (``data->a->>b``)."""

    name: str
    path: tuple[tuple[str, str], ...] = ()  # (arrow, key)


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    op: str
    value: str | tuple[str, ...]
    negate: bool = False
    quantifier: str | None = None  # "any" / "all" for eq(any) and friends; language for fts


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" | "or"
    children: tuple[Filter | Logic, ...]
    negate: bool = False


Condition = Filter | Logic


def tests_embed(node: Filter, keys: Collection[str]) -> bool:
    """``key=is.null`` / ``key=not.is.null`` on the key of an embed at the filter's level
    (PostgREST v11+): whether the parent row has no related row / at least one. Any other
    operator, or a JSON path, leaves it a filter on a column of that name."""
    return (
        node.op == "is" and node.value == "null" and not node.field.path and node.field.name in keys
    )


#: PostgREST's aggregate functions (``field.sum()``; ``count()`` alone is a ``CountItem``).
AGGREGATES = ("sum", "avg", "count", "max", "min")


@dataclass(frozen=True, slots=True)
class SelectItem:
    """``alias:field->path::cast``, or an aggregate of it: ``alias:field::cast.sum()::cast``
    (``cast`` applies to the field, ``aggregate_cast`` to the aggregate's result)."""

    field: Field | None  # None means "*"
    alias: str | None = None
    cast: str | None = None
    aggregate: str | None = None  # one of AGGREGATES
    aggregate_cast: str | None = None


@dataclass(frozen=True, slots=True)
class CountItem:
    """``count()`` in a select list (and a bare ``count`` when the relation has no such
    column): the number of rows, grouped by the other fields."""

    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True, slots=True)
class Embed:
    """``alias:relation!hint!inner(…)`` or ``...relation(…)``: a related resource."""

    name: str
    select: tuple[Item, ...]
    alias: str | None = None
    hint: str | None = None
    join: str | None = None  # "inner" | "left"
    spread: bool = False

    @property
    def key(self) -> str:
        """The name filters, orders and the response use for this embed."""
        return self.alias or self.name


Item = SelectItem | CountItem | Embed


@dataclass(frozen=True, slots=True)
class OrderTerm:
    field: Field
    descending: bool = False
    nulls: str | None = None  # "first" | "last"
    relation: str | None = None  # ``order=author(name)``: a column of a to-one embed


@dataclass
class EmbedQuery:
    """Filters, order and page of one embedded resource (``author.name=eq.x``…)."""

    where: list[Condition] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


@dataclass
class ReadQuery:
    select: list[Item] = field(default_factory=lambda: [SelectItem(None)])
    where: list[Condition] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    columns: list[str] | None = None
    on_conflict: list[str] | None = None
    arguments: list[tuple[str, str]] = field(default_factory=list)
    #: Parameters of embedded resources, by their path of embed keys (``("author",)``).
    embedded: dict[tuple[str, ...], EmbedQuery] = field(default_factory=dict)

    def at(self, path: tuple[str, ...]) -> EmbedQuery:
        return self.embedded.setdefault(path, EmbedQuery())


def parse_field(text: str) -> Field:
    """``name`` or ``"quoted name"``, then any number of ``->key`` / ``->>key`` steps.

    The grammar is matched by one regular expression whose pieces cannot overlap: a name or
    key character is never a ``-`` or ``>``, a ``-`` continues a name only when a name
    character follows it, and every repetition is possessive, so nothing is ever tried twice
    and the work is linear in the length of the text.
    """
    text = text.strip()
    if _PLAIN_NAME.fullmatch(text):
        return Field(text)
    match = _FIELD_PREFIX.match(text)
    assert match is not None  # the prefix pattern can match the empty string
    if match.end() != len(text) or not match["name"]:
        raise _field_error(text, match.end())
    name = match["name"]
    path = tuple(
        (arrow, single or double or bare)
        for arrow, single, double, bare in _STEP.findall(text, match.end("name"))
    )
    if not text.isascii():
        _check_letters(text, [name, *(key for _, key in path)])
    return Field(name.removeprefix('"').removesuffix('"'), path)


def _check_letters(text: str, names: list[str]) -> None:
    """Outside ASCII, names and keys are made of letters only (``²`` is not one)."""
    for part in names:
        if part.startswith(('"', "'")) or part.isascii():
            continue
        for char in part:
            if not char.isascii() and not char.isalpha():
                raise _field_error(text, text.find(char))


def _field_error(text: str, i: int) -> RestError:
    found = f'unexpected "{text[i]}"' if i < len(text) else "unexpected end of input"
    return parse_error(
        f'"failed to parse field ({text})" (line 1, column {i + 1})',
        f"{found} expecting a field name, then ->key or ->>key steps",
    )


def is_json_index(key: str) -> bool:
    """``0``, ``12`` or ``-1``: a JSON array index (ASCII digits only)."""
    digits = key[1:] if key.startswith("-") else key
    return digits.isascii() and digits.isdigit()


def parse_operation(field_: Field, text: str, *, source: str) -> Filter:
    """``[not.]op[(mod)].value`` → Filter. Values of simple operators are taken literally."""
    negate = False
    if text.startswith("not."):
        negate, text = True, text[4:]
    op_token, dot, value = text.partition(".")
    match = _OP_RE.fullmatch(op_token)
    if not dot or not match:
        raise parse_error(
            f'"failed to parse filter ({source})" (line 1, column 1)',
            "unexpected end of input expecting operator",
        )
    op, arg = match["op"], match["arg"]
    if op == "in" and arg is None:
        return Filter(field_, "in", parse_in_list(value, source), negate)
    if op == "is" and arg is None:
        if value.lower() not in IS_VALUES:
            raise parse_error(
                f'"failed to parse filter ({source})" (line 1, column 4)',
                'unexpected "' + value[:1] + '" expecting null or trilean value',
            )
        return Filter(field_, "is", value.lower(), negate)
    if op in FTS_OPS:
        return Filter(field_, op, value, negate, arg)
    if op in SIMPLE_OPS and (arg is None or (op in QUANTIFIABLE_OPS and arg in {"any", "all"})):
        if arg is not None:
            return Filter(field_, op, parse_in_list(_brace_to_paren(value), source), negate, arg)
        return Filter(field_, op, value, negate)
    raise parse_error(
        f'"failed to parse filter ({source})" (line 1, column 1)',
        f'unexpected "{op_token[:1]}" expecting operator (eq, gt, ...)',
    )


def _brace_to_paren(value: str) -> str:
    if value.startswith("{") and value.endswith("}"):
        return "(" + value[1:-1] + ")"
    return value


def parse_in_list(text: str, source: str) -> tuple[str, ...]:
    """``(a,"b,c",d)`` → elements; double-quoted elements unescape ``\\"`` and ``\\\\``."""
    stripped = text.strip()
    if not (stripped.startswith("(") and stripped.endswith(")")):
        raise parse_error(
            f'"failed to parse filter ({source})" (line 1, column 4)',
            'unexpected end of input expecting "("',
        )
    items, rest = _split_elements(stripped[1:-1], source)
    if rest:
        raise parse_error(f'"failed to parse filter ({source})"', "unexpected text after list")
    return tuple(items)


def _split_elements(body: str, source: str) -> tuple[list[str], str]:
    items: list[str] = []
    i = 0
    if body.strip() == "":
        return items, ""
    while True:
        while i < len(body) and body[i] == " ":
            i += 1
        if i < len(body) and body[i] == '"':
            value, i = _quoted(body, i, source)
        else:
            j = i
            while j < len(body) and body[j] not in ",":
                j += 1
            value, i = body[i:j], j
        items.append(value)
        if i >= len(body):
            return items, ""
        if body[i] != ",":
            return items, body[i:]
        i += 1


def _quoted(text: str, start: int, source: str) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise parse_error(f'"failed to parse filter ({source})"', 'unexpected end of input expecting "')


def parse_logic(key: str, value: str) -> Logic:
    """``or=(a.eq.1,and(b.gt.2,c.is.null))`` (key may be ``not.or``)."""
    negate = key.startswith("not.")
    op = key.removeprefix("not.")
    text = value.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise parse_error(
            f'"failed to parse logic tree ({value})" (line 1, column 4)',
            'unexpected end of input expecting "("',
        )
    children, end = _logic_children(text, 1, value, 1)
    if end != len(text):
        raise parse_error(f'"failed to parse logic tree ({value})"', "unexpected text")
    return Logic(op, tuple(children), negate)


def _logic_children(text: str, i: int, source: str, depth: int) -> tuple[list[Condition], int]:
    if depth > MAX_LOGIC_DEPTH:
        raise parse_error(
            f'"failed to parse logic tree ({source})"',
            f"logic trees may nest at most {MAX_LOGIC_DEPTH} levels deep",
        )
    children: list[Condition] = []
    while True:
        child, i = _logic_item(text, i, source, depth)
        children.append(child)
        if i >= len(text):
            raise parse_error(
                f'"failed to parse logic tree ({source})"', 'unexpected end of input expecting ")"'
            )
        if text[i] == ")":
            return children, i + 1
        if text[i] != ",":
            raise parse_error(
                f'"failed to parse logic tree ({source})"', f'unexpected "{text[i]}" expecting ","'
            )
        i += 1


def _logic_item(text: str, i: int, source: str, depth: int) -> tuple[Condition, int]:
    match = _LOGIC_OPEN_RE.match(text, i)
    if match:
        children, end = _logic_children(text, match.end(), source, depth + 1)
        return Logic(match[2], tuple(children), bool(match[1])), end
    # field.[not.]op.value — the field ends at the first "." that is not inside a JSON arrow.
    dot = text.find(".", i)
    if dot < 0:
        raise parse_error(f'"failed to parse logic tree ({source})"', "expecting field")
    field_ = parse_field(text[i:dot])
    j = dot + 1
    op_start = j
    if text.startswith("not.", j):
        j += 4
    op_end = text.find(".", j)
    if op_end < 0:
        raise parse_error(f'"failed to parse logic tree ({source})"', "expecting operator")
    value, end = _logic_value(text, op_end + 1, source)
    return parse_operation(field_, text[op_start : op_end + 1] + value, source=source), end


def _logic_value(text: str, i: int, source: str) -> tuple[str, int]:
    if i < len(text) and text[i] == '"':
        value, end = _quoted(text, i, source)
        return value, end
    if i < len(text) and text[i] in "({":
        closing = ")" if text[i] == "(" else "}"
        depth, j, in_quotes = 0, i, False
        while j < len(text):
            char = text[j]
            if char == '"' and text[j - 1] != "\\":
                in_quotes = not in_quotes
            elif not in_quotes and char == text[i]:
                depth += 1
            elif not in_quotes and char == closing:
                depth -= 1
                if depth == 0:
                    return text[i : j + 1], j + 1
            j += 1
        raise parse_error(
            f'"failed to parse logic tree ({source})"',
            f'unexpected end of input expecting "{closing}"',
        )
    j = i
    while j < len(text) and text[j] not in ",)":
        j += 1
    return text[i:j], j


def parse_select(text: str) -> list[Item]:
    return _parse_items(text, text, 1)


def _parse_items(text: str, source: str, depth: int) -> list[Item]:
    if depth > MAX_EMBED_DEPTH:
        raise parse_error(
            f'"failed to parse select parameter ({source})"',
            f"embedded resources may nest at most {MAX_EMBED_DEPTH} levels deep",
        )
    items: list[Item] = []
    for raw in _split_top_level(text, source):
        raw = raw.strip()
        if raw == "*":
            items.append(SelectItem(None))
        elif aggregate := _AGGREGATE_TAIL.fullmatch(raw):
            items.append(_parse_aggregate(aggregate, source))
        elif raw.endswith(")") and _open_paren(raw) > 0 and not raw.endswith("count()"):
            items.append(_parse_embed(raw, source, depth))
        else:
            items.append(_parse_column(raw, source))
    return items or [SelectItem(None)]


def _open_paren(raw: str) -> int:
    """Index of the first ``(`` outside double quotes (-1 when there is none)."""
    quoted = False
    for i, char in enumerate(raw):
        if char == '"':
            quoted = not quoted
        elif char == "(" and not quoted:
            return i
    return -1


def _parse_column(raw: str, source: str) -> SelectItem | CountItem:
    """A column (``alias:field->path::cast``) or ``count()``. A bare ``count`` stays a field:
    the plan makes it the row count when the table has no column of that name."""
    alias, field_text, cast = _select_parts(raw, source)
    if field_text.strip() == "count()":  # PostgREST never reads ``count(…)`` as an embed
        return CountItem(alias, cast)
    if field_text.strip().endswith("()"):
        raise RestError(400, "PGRST123", "Use of aggregate functions is not allowed")
    return SelectItem(parse_field(field_text), alias, cast)


def _parse_aggregate(match: re.Match[str], source: str) -> SelectItem:
    """``alias:field::cast.function()::cast``: an aggregate over a field."""
    alias, field_text, cast = _select_parts(match["head"], source)
    output_cast = match["cast"]
    if output_cast is not None and not _CAST_RE.fullmatch(output_cast):
        raise _select_error(source, "expecting a type name after ::")
    return SelectItem(parse_field(field_text), alias, cast, match["function"], output_cast)


def _parse_embed(raw: str, source: str, depth: int) -> Embed:
    open_at = _open_paren(raw)
    head, body = raw[:open_at].strip(), raw[open_at + 1 : -1]
    spread = head.startswith("...")
    head = head.removeprefix("...")
    alias: str | None = None
    colon = head.find(":")
    if colon >= 0 and not spread:
        alias, head = head[:colon].strip(), head[colon + 1 :].strip()
    name, *params = head.split("!")
    if not _EMBED_NAME.fullmatch(name) or (alias is not None and not _EMBED_NAME.fullmatch(alias)):
        raise _select_error(source, f"unexpected {raw[:40]!r} expecting a relation name")
    if len(params) > 2 or not all(_EMBED_NAME.fullmatch(p) for p in params):
        raise _select_error(source, f"unexpected {raw[:40]!r} expecting !hint or !inner")
    hint, join = None, None
    for param in params:
        if param in {"inner", "left"}:
            join = param
        else:
            hint = param
    return Embed(
        _unquote(name),
        tuple(_parse_items(body, source, depth + 1)) if body.strip() else (),
        _unquote(alias) if alias else None,
        _unquote(hint) if hint else None,
        join,
        spread,
    )


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') and name.endswith('"') and len(name) > 1 else name


def _select_error(source: str, details: str) -> RestError:
    return parse_error(f'"failed to parse select parameter ({source})"', details)


def _select_parts(raw: str, text: str) -> tuple[str | None, str, str | None]:
    """``alias:field::cast`` → its three parts (alias and cast optional)."""
    alias: str | None = None
    colon = raw.find(":")
    if colon > 0 and not raw.startswith("::", colon):
        alias, raw = raw[:colon].strip(), raw[colon + 1 :]
    field_text, sep, cast = raw.partition("::")
    if not field_text.strip() or (sep and not _CAST_RE.fullmatch(cast)):
        raise parse_error(
            f'"failed to parse select parameter ({text})"',
            "expecting a field, an optional alias: before it and an optional ::type after it",
        )
    return alias, field_text, cast or None


def _split_top_level(text: str, source: str | None = None) -> list[str]:
    """Split on commas outside parentheses and double quotes, in one pass."""
    if "(" not in text and ")" not in text and '"' not in text:
        return [part for part in text.split(",") if part.strip()]
    parts: list[str] = []
    start = 0
    depth = 0
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise parse_error(
            f'"failed to parse select parameter ({source or text})"',
            'unexpected end of input expecting ")" or a closing quote'
            if depth > 0 or quoted
            else 'unexpected ")"',
        )
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_order(text: str) -> list[OrderTerm]:
    terms = []
    for raw in _split_top_level(text):
        raw = raw.strip()
        relation = None
        match = _ORDER_RELATION.match(raw)
        if match:
            relation, raw = match["rel"], match["field"] + raw[match.end() :]
        pieces = raw.split(".")
        field_ = parse_field(pieces[0])
        descending, nulls = False, None
        for modifier in pieces[1:]:
            if modifier in {"asc", "desc"}:
                descending = modifier == "desc"
            elif modifier in {"nullsfirst", "nullslast"}:
                nulls = modifier[5:]
            else:
                raise parse_error(
                    f'"failed to parse order ({text})" (line 1, column 1)',
                    f'unexpected "{modifier}" expecting "asc", "desc", "nullsfirst" or "nullslast"',
                )
        terms.append(OrderTerm(field_, descending, nulls, relation))
    return terms


def parse_non_negative(name: str, text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise parse_error(
            f'"failed to parse {name} parameter ({text})"', "expecting a non-negative integer"
        )
    return int(text)


def parse_identifier_list(text: str) -> list[str]:
    return [part.strip().strip('"') for part in text.split(",") if part.strip()]


def parse_query(params: list[tuple[str, str]], *, rpc: bool = False) -> ReadQuery:
    """Split a query string into reserved parameters, filters and (for RPC GET) arguments."""
    query = ReadQuery()
    for key, value in params:
        _check_size(key, value)
        if key == "select":
            query.select = parse_select(value)
        elif key == "columns":
            query.columns = parse_identifier_list(value)
        elif key == "on_conflict":
            query.on_conflict = parse_identifier_list(value)
        elif key == "order":
            query.order = parse_order(value)
        elif key == "limit":
            query.limit = parse_non_negative("limit", value)
        elif key == "offset":
            query.offset = parse_non_negative("offset", value)
        elif key in LOGIC_KEYS:
            query.where.append(parse_logic(key, value))
        elif key in RESERVED:
            continue
        elif "." in key.split("->")[0] and not key.startswith('"'):
            _embedded_parameter(query, key, value)
        elif rpc and not _looks_like_operation(value):
            query.arguments.append((key, value))
        else:
            query.where.append(parse_operation(parse_field(key), value, source=value))
    return query


def _embedded_parameter(query: ReadQuery, key: str, value: str) -> None:
    """``author.name=eq.x``, ``author.or=(…)``, ``books.order=title``, ``books.limit=2``."""
    head, arrow, json_path = key.partition("->")
    negate = not arrow and head.endswith((".not.or", ".not.and"))
    if negate:
        head = head[: head.rindex(".not.")] + head[head.rindex(".not.") + 4 :]
    *path, last = head.split(".")
    if not all(path):
        raise parse_error(f'"failed to parse filter ({key})"', "expecting an embedded resource")
    target = query.at(tuple(path))
    if not arrow:
        _check_size(last, value)
    if last == "order" and not arrow:
        target.order = parse_order(value)
    elif last in {"limit", "offset"} and not arrow:
        number = parse_non_negative(last, value)
        if last == "limit":
            target.limit = number
        else:
            target.offset = number
    elif last in {"or", "and"} and not arrow:
        target.where.append(parse_logic(("not." if negate else "") + last, value))
    elif last == "not" and not arrow:
        raise parse_error(f'"failed to parse filter ({key})"', "expecting a field")
    else:
        field_ = parse_field(last + arrow + json_path)
        target.where.append(parse_operation(field_, value, source=value))


def _check_size(key: str, value: str) -> None:
    """Bounds on one parameter, and text PostgreSQL can take (no NUL)."""
    if "\x00" in key or "\x00" in value:
        raise RestError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    if len(key) > MAX_NAME_CHARS:
        raise parse_error(
            f'"failed to parse parameter name ({key[:40]}…)"',
            f"{len(key)} characters; names are at most {MAX_NAME_CHARS} characters long",
        )
    if (key in _STRUCTURAL or key in LOGIC_KEYS) and len(value) > MAX_STRUCTURE_CHARS:
        raise parse_error(
            f'"failed to parse {key} parameter ({value[:40]}…)"',
            f"{len(value)} characters; {key} is at most {MAX_STRUCTURE_CHARS} characters long",
        )


def _looks_like_operation(value: str) -> bool:
    text = value.removeprefix("not.")
    op_token, dot, _ = text.partition(".")
    match = _OP_RE.fullmatch(op_token)
    return bool(dot and match and (match["op"] in SIMPLE_OPS | FTS_OPS | {"in", "is"}))
