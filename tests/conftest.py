"""Shared fixtures: one real localbase per test session, official clients, user JWTs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from localbase import keys
from supabase import Client, ClientOptions, create_client


@pytest.fixture(scope="session")
def localbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    """A localbase with the project's migrations, shared by the whole session."""
    stack = LocalbaseProcess(tmp_path_factory.mktemp("localbase") / "data")
    stack.start()
    yield stack
    assert stack.stop() == 0


@pytest.fixture(scope="session")
def admin_sql(localbase: LocalbaseProcess) -> Callable[[str], None]:
    """Run SQL as the ``postgres`` superuser (what a migration or Studio would do)."""

    def run(statement: str) -> None:
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            conn.execute(statement.encode())

    return run


def make_jwt(
    sub: str | None = None, role: str = "authenticated", *, expires_in: int = 3600, **extra: object
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "role": role,
        "aud": role,
        "iat": now,
        "exp": now + expires_in,
        **extra,
    }
    if sub is not None:
        claims["sub"] = sub
    return jwt.encode(claims, keys.JWT_SECRET, algorithm="HS256")


@pytest.fixture
def user_token() -> Callable[[str], str]:
    return lambda sub: make_jwt(sub)


_open_http_clients: list[httpx.Client] = []


def connect(url: str, key: str, token: str | None = None) -> Client:
    """An official sync client whose HTTP connections the test session closes."""
    http = httpx.Client(timeout=30)
    _open_http_clients.append(http)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return create_client(url, key, ClientOptions(httpx_client=http, headers=headers))


@pytest.fixture(autouse=True)
def _close_http_clients() -> Iterator[None]:
    yield
    while _open_http_clients:
        _open_http_clients.pop().close()


@pytest.fixture
def service_client(localbase: LocalbaseProcess) -> Client:
    return connect(localbase.url, localbase.service_key)


@pytest.fixture
def anon_client(localbase: LocalbaseProcess) -> Client:
    return connect(localbase.url, localbase.anon_key)


def user_client(localbase: LocalbaseProcess, sub: str) -> Client:
    return connect(localbase.url, localbase.anon_key, make_jwt(sub))


@pytest.fixture
def new_user() -> Callable[[], str]:
    return lambda: str(uuid.uuid4())


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")
