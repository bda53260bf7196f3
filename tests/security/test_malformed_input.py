"""Malformed input gets PostgREST's (or Storage's) 4xx with a body saying what is wrong;
never a 500, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import connect, make_jwt
from tests.security.conftest import api_headers, assert_error_body


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "²"}, "PGRST100"),
        ({"offset": "١"}, "PGRST100"),
        ({"limit": "9" * 5000}, "PGRST100"),
        ({"select": "input_data->²"}, "PGRST100"),
        ({"select": "input_data->>>x"}, "PGRST100"),
        ({"select": "id::ｔｅｘｔ"}, "PGRST100"),
        ({"select": "id::text;drop table x"}, "PGRST100"),
        ({"job_type": "eq.a\x00b"}, "22021"),
        ({"input_data->\x00": "eq.1"}, "22021"),
    ],
)
def test_malformed_query_parameters(
    anon_http: httpx.Client, params: dict[str, str], code: str
) -> None:
    response = anon_http.get("/rest/v1/security_jobs", params=params)
    assert assert_error_body(response, 400)["code"] == code


def test_max_affected_with_a_superscript_is_not_a_500(service_http: httpx.Client) -> None:
    response = service_http.delete(
        "/rest/v1/security_jobs",
        params={"id": "eq.-1"},
        headers={"Prefer": "handling=strict, max-affected=²".encode()},
    )
    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"p_job_type": "a\\u0000b"}', "22P05"),
        ('{"p_job_type": "\\ud800"}', "22P02"),
        ('{"p_job_type": "\\udc00x"}', "22P02"),
        ('{"p_job_type": "x", "p_input": {"k\\u0000": 1}}', "22P05"),
        ('{"p_job_type": "x", "p_input": {"n": NaN}}', "PGRST102"),
        ('{"p_job_type": "x", "p_input": [Infinity]}', "PGRST102"),
        ('{"p_job_type": "x", "p_input": ' + "[" * 50_000 + "]" * 50_000 + "}", "PGRST102"),
    ],
)
def test_malformed_rpc_bodies(anon_http: httpx.Client, body: str, code: str) -> None:
    before = anon_http.get("/rest/v1/security_jobs", params={"select": "id"}).json()
    response = anon_http.post(
        "/rest/v1/rpc/security_enqueue",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert assert_error_body(response, 400)["code"] == code
    assert anon_http.get("/rest/v1/security_jobs", params={"select": "id"}).json() == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_stored(anon_http: httpx.Client, constant: str) -> None:
    response = anon_http.post(
        "/rest/v1/security_jobs",
        content=f'{{"job_type": "nan-{constant}", "score": {constant}}}',
        headers={"Content-Type": "application/json"},
    )
    assert assert_error_body(response, 400)["code"] == "PGRST102"
    stored = anon_http.get("/rest/v1/security_jobs", params={"job_type": f"eq.nan-{constant}"})
    assert stored.json() == []


def test_nul_in_the_role_claim_is_400(localbase: LocalbaseProcess, security_schema: None) -> None:
    client = connect(localbase.url, localbase.anon_key, make_jwt(role="service_role\x00"))
    with pytest.raises(APIError) as info:
        client.table("security_jobs").select("id").execute()
    assert info.value.code == "22P05"


@pytest.mark.parametrize("role", ["service_role\ud800", "\udfff"])
def test_unpaired_surrogate_in_the_role_claim_is_400(
    localbase: LocalbaseProcess, security_schema: None, role: str
) -> None:
    token = make_jwt(role=role)
    response = httpx.get(
        f"{localbase.url}/rest/v1/security_jobs",
        headers=api_headers(localbase.anon_key, token),
    )
    assert assert_error_body(response, 400)["code"] == "22P02"


def test_official_client_rpc_with_nul_is_a_clean_api_error(
    localbase: LocalbaseProcess, security_schema: None
) -> None:
    client: Client = connect(localbase.url, localbase.anon_key)
    with pytest.raises(APIError) as info:
        client.rpc("security_enqueue", {"p_job_type": "a\x00b"}).execute()
    assert info.value.code == "22P05"


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "b", "public": NaN}',
        '{"name": "b\\u0000"}',
        '{"name": "\\ud800"}',
        "[" * 50_000,
    ],
)
def test_malformed_storage_bodies(localbase: LocalbaseProcess, body: str) -> None:
    response = httpx.post(
        f"{localbase.url}/storage/v1/bucket",
        content=body,
        headers={**api_headers(localbase.service_key), "Content-Type": "application/json"},
    )
    error: dict[str, Any] = assert_error_body(response, 400)
    assert error["statusCode"] == "400"
