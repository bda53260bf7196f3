"""PostgREST's in-database configuration: ``pgrst.*`` settings of ``authenticator``, read as
PostgREST reads them (database-specific over role-wide, ``alter database`` alone ignored)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from localbase.rest.config import InDatabaseConfig, parse_boolean

RESET = """
alter role authenticator reset pgrst.db_plan_enabled;
alter role authenticator reset pgrst.db_aggregates_enabled;
alter role authenticator in database postgres reset pgrst.db_plan_enabled;
alter role authenticator in database postgres reset pgrst.db_aggregates_enabled;
alter database postgres reset pgrst.db_plan_enabled;
notify pgrst, 'reload config';
"""


@pytest.fixture
def settings(admin_sql: Callable[[str], None]) -> Iterator[Callable[[str], None]]:
    yield admin_sql
    admin_sql(RESET)


async def _load(localbase: LocalbaseProcess) -> InDatabaseConfig:
    async with await psycopg.AsyncConnection.connect(localbase.db_dsn, autocommit=True) as conn:
        await conn.execute("set role authenticator")
        return await InDatabaseConfig.load(conn)


async def test_defaults_are_off(localbase: LocalbaseProcess) -> None:
    assert await _load(localbase) == InDatabaseConfig(
        db_plan_enabled=False, db_aggregates_enabled=False
    )


async def test_database_specific_settings_override_role_wide_ones(
    localbase: LocalbaseProcess, settings: Callable[[str], None]
) -> None:
    settings(
        "alter role authenticator set pgrst.db_plan_enabled to 'true';"
        "alter role authenticator set pgrst.db_aggregates_enabled to 'true';"
        "alter role authenticator in database postgres set pgrst.db_aggregates_enabled = 'false'"
    )
    assert await _load(localbase) == InDatabaseConfig(
        db_plan_enabled=True, db_aggregates_enabled=False
    )


async def test_a_database_setting_alone_has_no_effect(
    localbase: LocalbaseProcess, settings: Callable[[str], None]
) -> None:
    settings("alter database postgres set pgrst.db_plan_enabled to 'true'")
    assert not (await _load(localbase)).db_plan_enabled


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("'True'", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("yes", None),
        ("", None),
    ],
)
def test_booleans_are_read_as_postgrest_reads_them(text: str, value: bool | None) -> None:
    assert parse_boolean(text) is value
