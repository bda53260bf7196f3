"""Strict JSON and the bounded claims cache, without a server."""

from __future__ import annotations

import pytest

from localbase.claims_cache import ClaimsCache
from localbase.strict_json import JsonInputError, loads


@pytest.mark.parametrize(
    ("text", "sqlstate"),
    [
        ("[NaN]", None),
        ('{"a": -Infinity}', None),
        ("[" * 100_000, None),
        (b"\xff", None),
        ('"a\\u0000b"', "22P05"),
        ('{"\\u0000": 1}', "22P05"),
        ('["\\ud800"]', "22P02"),
        ('{"k": "\\udfff"}', "22P02"),
    ],
)
def test_refused_json(text: str | bytes, sqlstate: str | None) -> None:
    with pytest.raises(JsonInputError) as info:
        loads(text)
    assert info.value.sqlstate == sqlstate


def test_accepted_json_keeps_surrogate_pairs_and_depth_limits_apply() -> None:
    assert loads('["\\ud83d\\ude00", 1.5, null]') == ["😀", 1.5, None]
    assert loads("[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(JsonInputError):
        loads("[[[[1]]]]", max_depth=3)


def test_claims_cache_is_bounded_by_count_and_bytes() -> None:
    cache = ClaimsCache(max_entries=3, max_bytes=1000)
    for index in range(10):
        cache.put(f"token-{index}", "s", {"n": index})
    assert len(cache) == 3
    assert cache.get("token-9", "s") == {"n": 9}
    assert cache.get("token-0", "s") is None
    cache.put("x" * 400, "s", {})
    assert cache.size_bytes <= 1000
    cache.put("y" * 600, "s", {})  # more than the whole budget: not kept
    assert cache.get("y" * 600, "s") is None
