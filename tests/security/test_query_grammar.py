"""The REST query grammar under hostile input: inputs that once backtracked for minutes
answer 400 at once, and the event loop keeps serving everyone else meanwhile."""

from __future__ import annotations

import asyncio
import http.client
import json

import httpx
import pytest

from devstack.localbase import LocalbaseProcess
from tests.security.conftest import api_headers, assert_error_body

#: 2^34 ways to split the path for the old field pattern (about 30 minutes of one core).
BACKTRACKER = "input_data" + "->>>" * 34 + "-"


@pytest.mark.parametrize(
    "params",
    [
        {"select": BACKTRACKER},
        {BACKTRACKER: "eq.1"},
        {"order": BACKTRACKER},
        {"or": f"({BACKTRACKER}.eq.1)"},
    ],
    ids=["select", "filter-key", "order", "logic-tree"],
)
async def test_backtracking_inputs_are_400_while_health_answers(
    localbase: LocalbaseProcess, security_schema: None, params: dict[str, str]
) -> None:
    headers = api_headers(localbase.anon_key)
    async with httpx.AsyncClient(base_url=localbase.url, timeout=30) as http:
        hostile = [
            asyncio.create_task(http.get("/rest/v1/security_jobs", params=params, headers=headers))
            for _ in range(4)
        ]
        health = await asyncio.wait_for(http.get("/health"), timeout=2)
        answers = await asyncio.wait_for(asyncio.gather(*hostile), timeout=10)
    assert health.status_code == 200
    for answer in answers:
        assert assert_error_body(answer, 400)["code"] == "PGRST100"


def test_query_string_over_the_limit_is_414(localbase: LocalbaseProcess) -> None:
    # httpx itself refuses URLs this long, so the request is written by hand.
    connection = http.client.HTTPConnection("127.0.0.1", localbase.api_port, timeout=30)
    try:
        connection.request(
            "GET",
            "/rest/v1/security_jobs?id=in.(" + "1," * 20_000 + ")",
            headers=api_headers(localbase.anon_key),
        )
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert status == 414
    assert body["code"] == "PGRST100"
    assert "32768" in body["details"]


def test_structural_parameter_over_the_limit_is_400(anon_http: httpx.Client) -> None:
    response = anon_http.get("/rest/v1/security_jobs", params={"select": "id," * 6000})
    assert assert_error_body(response, 400)["code"] == "PGRST100"


def test_deep_logic_tree_is_400(anon_http: httpx.Client) -> None:
    tree = "(" + "and(" * 500 + "id.is.null" + ")" * 501
    response = anon_http.get("/rest/v1/security_jobs", params={"or": tree})
    assert assert_error_body(response, 400)["code"] == "PGRST100"


def test_logic_tree_within_the_depth_limit_is_served(anon_http: httpx.Client) -> None:
    tree = "(" + "and(" * 30 + "id.is.null" + ")" * 31
    response = anon_http.get("/rest/v1/security_jobs", params={"or": tree})
    assert response.status_code == 200, response.text
