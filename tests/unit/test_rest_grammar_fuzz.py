"""Property test: no query string of up to 8 KB, however hostile, makes the REST grammar do
more than a bounded amount of work or fail with anything but a PostgREST 400."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localbase.rest.errors import RestError
from localbase.rest.query import parse_query

MAX_QUERY_CHARS = 8 * 1024
#: CPU time one parse may take. A linear parse of 8 KB takes a few milliseconds; a
#: backtracking one takes seconds to hours.
MAX_PARSE_SECONDS = 0.05

# Pieces that the grammar gives meaning to, so that generated text hits every branch:
# arrows and their prefixes, quotes, casts, logic-tree openers, operators, list syntax.
TOKENS = [
    "-",
    ">",
    "->",
    "->>",
    "->>>",
    "'",
    '"',
    ":",
    "::",
    ".",
    ",",
    "(",
    ")",
    "{",
    "}",
    "\\",
    "and(",
    "or(",
    "not.",
    "eq.",
    "in.(",
    "is.null",
    "cs.{",
    "(any)",
    "desc",
    "nullslast",
    "a",
    "input_data",
    "id",
    "0",
    "-1",
    "²",
    "١",
    "é",
    " ",
    "*",
    "%",
    "\x00",
]
KEYS = ["select", "order", "or", "and", "not.or", "limit", "offset", "columns", "on_conflict"]

piece = st.one_of(st.sampled_from(TOKENS), st.text(max_size=3))
text = st.lists(piece, max_size=400).map("".join)
repeated = st.tuples(st.lists(piece, min_size=1, max_size=4), st.integers(1, 2000)).map(
    lambda parts_count: "".join(parts_count[0]) * parts_count[1]
)
value = st.one_of(text, repeated, st.tuples(text, repeated, text).map("".join))
key = st.one_of(st.sampled_from(KEYS), value)
query = st.lists(st.tuples(key, value), min_size=1, max_size=6).filter(
    lambda params: sum(len(k) + len(v) for k, v in params) <= MAX_QUERY_CHARS
)


def timed_parse(
    params: list[tuple[str, str]], *, rpc: bool = False
) -> tuple[RestError | None, float]:
    """The parse's error (None if it parsed) and the CPU time it took."""
    began = time.thread_time()
    try:
        parse_query(params, rpc=rpc)
    except RestError as exc:
        return exc, time.thread_time() - began
    return None, time.thread_time() - began


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=query, rpc=st.booleans())
def test_any_query_parses_or_is_a_400_within_bounded_time(
    params: list[tuple[str, str]], rpc: bool
) -> None:
    error, spent = timed_parse(params, rpc=rpc)
    if error is not None:
        assert error.status == 400
        assert error.code == "PGRST100" or error.code.startswith(("PGRST2", "22"))
    assert spent < MAX_PARSE_SECONDS, f"{spent * 1000:.1f} ms for {params!r:.200}"


def test_the_known_backtracking_inputs_are_quick() -> None:
    for repeat in (26, 34, 2000):
        field = "input_data" + "->>>" * repeat + "-"
        for params in ([("select", field)], [(field, "eq.1")], [("order", field)]):
            error, spent = timed_parse(params)
            assert error is not None
            assert error.code == "PGRST100"
            assert spent < MAX_PARSE_SECONDS
