"""Statement timeouts per role, as on hosted Supabase (anon 3 s, authenticated and
authenticator 8 s), applied when a request switches role, and PostgREST's answer when one
fires."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from tests.conftest import connect, make_jwt


def timeout_of(stack: LocalbaseProcess, token: str | None) -> str:
    client = connect(stack.url, stack.anon_key, token)
    value = client.rpc("security_statement_timeout").execute().data
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(
    ("role", "expected"), [("anon", "3s"), ("authenticated", "8s"), ("service_role", "8s")]
)
def test_each_role_runs_with_its_hosted_timeout(
    localbase: LocalbaseProcess, security_schema: None, role: str, expected: str
) -> None:
    assert timeout_of(localbase, make_jwt(role=role)) == expected


def test_a_timed_out_request_gets_postgrests_error(
    localbase: LocalbaseProcess, security_schema: None
) -> None:
    client = connect(localbase.url, localbase.anon_key)
    with pytest.raises(APIError) as info:
        client.rpc("security_sleep", {"p_seconds": 3.5}).execute()
    assert info.value.code == "57014"
    assert info.value.message == "canceling statement due to statement timeout"


def test_alter_role_changes_the_timeout_after_a_reload(
    localbase: LocalbaseProcess, security_schema: None, admin_sql: Callable[[str], None]
) -> None:
    token = make_jwt(role="authenticated")
    admin_sql("alter role authenticated set statement_timeout = '5s'")
    try:
        admin_sql("notify pgrst, 'reload config'")
        deadline = time.monotonic() + 10
        while timeout_of(localbase, token) != "5s":
            assert time.monotonic() < deadline, "the new timeout was not applied"
            time.sleep(0.05)
    finally:
        admin_sql("alter role authenticated set statement_timeout = '8s'")
        admin_sql("notify pgrst, 'reload config'")
