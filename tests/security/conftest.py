"""Fixtures of the hostile-input suite: a small schema of its own on the shared localbase,
raw HTTP clients (the attacks are requests the official clients would never build), and
helpers to read the localbase process's memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.localbase import LocalbaseProcess

SCHEMA = """
drop table if exists public.security_jobs;
create table public.security_jobs (
    id bigint generated always as identity primary key,
    job_type text not null default 'x',
    input_data jsonb not null default '{}'::jsonb,
    score double precision
);
grant select, insert, update, delete on public.security_jobs to anon, service_role;
grant usage on sequence public.security_jobs_id_seq to anon, service_role;
create or replace function public.security_enqueue(p_job_type text, p_input jsonb default '{}')
returns public.security_jobs language sql volatile as $$
  insert into public.security_jobs (job_type, input_data) values (p_job_type, p_input)
  returning *
$$;
grant execute on function public.security_enqueue(text, jsonb) to anon, service_role;
create or replace function public.security_sleep(p_seconds double precision) returns int
language sql volatile as $$ select 1 from pg_sleep(p_seconds) $$;
grant execute on function public.security_sleep(double precision) to anon, service_role;
create or replace function public.security_statement_timeout() returns text
language sql stable as $$ select current_setting('statement_timeout') $$;
grant execute on function public.security_statement_timeout()
    to anon, authenticated, service_role;
"""


@pytest.fixture(scope="session")
def security_schema(admin_sql: Callable[[str], None]) -> None:
    admin_sql(SCHEMA)


def api_headers(key: str, token: str | None = None) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {token or key}"}


@pytest.fixture
def anon_http(localbase: LocalbaseProcess, security_schema: None) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=localbase.url, headers=api_headers(localbase.anon_key), timeout=30
    ) as client:
        yield client


@pytest.fixture
def service_http(localbase: LocalbaseProcess, security_schema: None) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=localbase.url, headers=api_headers(localbase.service_key), timeout=30
    ) as client:
        yield client


def rss_bytes(stack: LocalbaseProcess) -> int:
    """Resident memory of the localbase process (the API server, not PostgreSQL)."""
    assert stack.process is not None
    for line in Path(f"/proc/{stack.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def assert_error_body(response: httpx.Response, status: int | None = None) -> dict[str, object]:
    """A 4xx (or ``status``) with a JSON object body that says what went wrong."""
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str), body
    assert body["message"], body
    return body
