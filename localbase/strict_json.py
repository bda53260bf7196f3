"""JSON from clients, parsed as strictly as PostgreSQL would take it.

Python's ``json`` module is lenient where PostgREST and PostgreSQL are not: it accepts ``NaN``
and ``Infinity``, and it decodes ``"\\u0000"`` and unpaired surrogates such as ``"\\ud800"``
into strings that cannot be sent to PostgreSQL (psycopg refuses NUL; a lone surrogate cannot
be encoded as UTF-8). Every request body and Realtime frame goes through :func:`loads`, which
refuses all of these with the SQLSTATE PostgreSQL gives for the same JSON:

JsonInputError          the text is not JSON a client may send
├── sqlstate None       not JSON at all (syntax, NaN/Infinity, nested deeper than the
│                       decoder's recursion limit)
├── sqlstate "22P05"    a string holds ``\\u0000`` (NUL)
└── sqlstate "22P02"    a string holds an unpaired UTF-16 surrogate
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, NoReturn

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class JsonInputError(ValueError):
    """The text is not JSON localbase accepts; see the module docstring."""

    def __init__(self, message: str, detail: str | None = None, sqlstate: str | None = None):
        super().__init__(message if detail is None else f"{message}: {detail}")
        self.message = message
        self.detail = detail
        self.sqlstate = sqlstate


def _constant(name: str) -> NoReturn:
    raise JsonInputError("invalid JSON", f'Token "{name}" is invalid.')


_DECODER: Final = json.JSONDecoder(parse_constant=_constant)


def loads(text: str | bytes | bytearray, *, max_depth: int | None = None) -> Any:
    """Decode ``text`` strictly (see the module docstring); with ``max_depth``, documents
    nested deeper than that are refused as not JSON."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError("invalid JSON", "the body is not UTF-8") from exc
    try:
        value = _DECODER.decode(text)
    except JsonInputError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonInputError("invalid JSON", str(exc)) from exc
    check_strings(value, max_depth=max_depth)
    return value


def check_strings(value: Any, *, max_depth: int | None = None) -> None:
    """Refuse NUL and unpaired surrogates in any key or string of a decoded document (and,
    with ``max_depth``, nesting deeper than that)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if max_depth is not None and depth >= max_depth:
            raise JsonInputError("invalid JSON", f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, inner in item.items():
                check_text(key)
                stack.append((inner, depth + 1))
        else:
            stack.extend((inner, depth + 1) for inner in item)


def check_text(text: str) -> None:
    """Refuse text PostgreSQL cannot store: NUL, or an unpaired UTF-16 surrogate."""
    if "\x00" in text:
        raise JsonInputError(
            "unsupported Unicode escape sequence", "\\u0000 cannot be converted to text.", "22P05"
        )
    if not text.isascii() and _SURROGATE.search(text):
        raise JsonInputError(
            "invalid input syntax for type json",
            "Unicode low surrogate must follow a high surrogate.",
            "22P02",
        )
