"""Fixtures of the integration tests: SQL on the session's localbase, as ``postgres`` (what
Supabase Studio does), with the job tables emptied first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.localbase import LocalbaseProcess
from tests.helpers import Sql, studio_sql


@pytest.fixture(scope="module")
def db(localbase: LocalbaseProcess) -> Iterator[Sql]:
    """One connection for the whole module."""
    with studio_sql(localbase.db_dsn, empty=True) as run:
        yield run


@pytest.fixture
def sql(localbase: LocalbaseProcess) -> Iterator[Sql]:
    """One connection per test."""
    with studio_sql(localbase.db_dsn, empty=True) as run:
        yield run
