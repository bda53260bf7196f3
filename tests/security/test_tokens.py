"""Oversized credentials are refused before they are verified or remembered, and the cache of
verified tokens stays within its bounds however many distinct tokens arrive."""

from __future__ import annotations

import httpx

from devstack.localbase import LocalbaseProcess
from localbase.auth import MAX_TOKEN_BYTES
from tests.conformance.realtime_helpers import raw_socket, topic_name
from tests.conftest import make_jwt
from tests.security.conftest import api_headers, assert_error_body, rss_bytes

MIB = 1024 * 1024


def padded_token(size: int, *, index: int = 0) -> str:
    """A validly signed JWT of about ``size`` bytes (the demo secret is public)."""
    bare = len(make_jwt(role="anon", pad="", n=index))
    return make_jwt(role="anon", pad="x" * ((size - bare) * 3 // 4), n=index)


def test_token_over_the_limit_is_401_with_postgrest_body(
    localbase: LocalbaseProcess, security_schema: None
) -> None:
    token = padded_token(MAX_TOKEN_BYTES + 100)
    assert MAX_TOKEN_BYTES < len(token) < 2 * MAX_TOKEN_BYTES
    response = httpx.get(
        f"{localbase.url}/rest/v1/security_jobs",
        headers=api_headers(localbase.anon_key, token),
    )
    body = assert_error_body(response, 401)
    assert body["code"] == "PGRST301"
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_token_under_the_limit_is_served(
    localbase: LocalbaseProcess, security_schema: None
) -> None:
    token = padded_token(MAX_TOKEN_BYTES - 200)
    response = httpx.get(
        f"{localbase.url}/rest/v1/security_jobs",
        params={"select": "id", "limit": "1"},
        headers=api_headers(localbase.anon_key, token),
    )
    assert response.status_code == 200, response.text


def test_oversized_api_key_is_the_gateways_401(localbase: LocalbaseProcess) -> None:
    key = padded_token(MAX_TOKEN_BYTES + 100)
    response = httpx.get(f"{localbase.url}/rest/v1/security_jobs", headers={"apikey": key})
    assert assert_error_body(response, 401)["message"] == "Invalid API key"


def test_oversized_storage_token_is_refused(localbase: LocalbaseProcess) -> None:
    token = padded_token(MAX_TOKEN_BYTES + 100)
    response = httpx.get(
        f"{localbase.url}/storage/v1/bucket", headers=api_headers(localbase.anon_key, token)
    )
    assert assert_error_body(response)["statusCode"] == "403"


def test_huge_authorization_header_is_431(localbase: LocalbaseProcess) -> None:
    token = "x" * (26 * MIB)
    response = httpx.get(
        f"{localbase.url}/rest/v1/security_jobs",
        headers=api_headers(localbase.anon_key, token),
        timeout=60,
    )
    assert_error_body(response, 431)


async def test_oversized_realtime_access_token_refuses_the_join(
    localbase: LocalbaseProcess,
) -> None:
    async with raw_socket(localbase) as socket:
        _, reply = await socket.join(
            "realtime:" + topic_name(), [], token=padded_token(MAX_TOKEN_BYTES + 100)
        )
        await socket.heartbeat()
    assert reply["payload"]["status"] == "error"
    assert reply["payload"]["response"]["reason"].startswith("MalformedJWT: ")


def test_memory_is_unchanged_after_300_one_megabyte_tokens(localbase: LocalbaseProcess) -> None:
    url = f"{localbase.url}/rest/v1/security_jobs"
    with httpx.Client(timeout=60) as http:
        http.get(url, headers=api_headers(localbase.anon_key, padded_token(MIB)))
        before = rss_bytes(localbase)
        for index in range(300):
            token = padded_token(MIB, index=index)
            response = http.get(url, headers=api_headers(localbase.anon_key, token))
            assert response.status_code == 431
        after = rss_bytes(localbase)
    assert after - before < 48 * MIB, f"grew by {(after - before) / MIB:.0f} MiB"


def test_claims_cache_stays_bounded_with_many_valid_tokens(
    localbase: LocalbaseProcess, security_schema: None
) -> None:
    url = f"{localbase.url}/rest/v1/security_jobs"
    params = {"select": "id", "limit": "1"}
    with httpx.Client(timeout=60) as http:
        http.get(url, params=params, headers=api_headers(localbase.anon_key))
        before = rss_bytes(localbase)
        for index in range(3000):
            token = padded_token(MAX_TOKEN_BYTES - 200, index=index)
            response = http.get(url, params=params, headers=api_headers(localbase.anon_key, token))
            assert response.status_code == 200, response.text
        after = rss_bytes(localbase)
    # 3,000 × 8 KB tokens are 24 MB of tokens (and as much again of claims) if all were kept.
    assert after - before < 24 * MIB, f"grew by {(after - before) / MIB:.0f} MiB"
