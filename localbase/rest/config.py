"""PostgREST's in-database configuration: the ``pgrst.*`` settings of the ``authenticator`` role.

A project turns features on as on hosted Supabase, in a migration or in psql::

    alter role authenticator set pgrst.db_plan_enabled to 'true';
    alter role authenticator set pgrst.db_aggregates_enabled to 'true';
    notify pgrst, 'reload config';

They are read with the schema cache: at start (after the migrations) and again after every
``NOTIFY pgrst``. As in PostgREST, a setting made ``in database <current>`` overrides the
role-wide one, and one made with ``alter database … set`` alone has no effect. Both default to
off, as on hosted Supabase.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

log = logging.getLogger("localbase.rest")

#: PostgREST's query, restricted to the settings localbase reads: the logged-in role's
#: ``pgrst.*`` settings, database-specific ones first.
_SETTINGS_SQL = """
select distinct on (key) replace(k, 'pgrst.', '') as key, v as value
from (
  select s.setdatabase as database,
         substr(c.setting, 1, strpos(c.setting, '=') - 1) as k,
         substr(c.setting, strpos(c.setting, '=') + 1) as v
  from pg_catalog.pg_db_role_setting s
  cross join lateral unnest(s.setconfig) as c(setting)
  where s.setrole = quote_ident(current_user)::regrole::oid
    and s.setdatabase in (0, (select oid from pg_catalog.pg_database
                              where datname = current_catalog))
) kv
where k = any(%s) and v is not null
order by key, database desc
"""


@dataclass(frozen=True)
class InDatabaseConfig:
    """The PostgREST options a project may set in the database (all off by default)."""

    #: ``db-plan-enabled``: ``Accept: application/vnd.pgrst.plan…`` answers the EXPLAIN output.
    db_plan_enabled: bool = False
    #: ``db-aggregates-enabled``: ``count()``, ``sum()``, ``avg()``, ``max()``, ``min()``.
    db_aggregates_enabled: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> InDatabaseConfig:
        """The config from ``{"db_plan_enabled": "true", …}``; a value PostgREST would not
        read as a boolean keeps the default (and is logged)."""
        return cls(
            db_plan_enabled=_boolean(settings, "db_plan_enabled"),
            db_aggregates_enabled=_boolean(settings, "db_aggregates_enabled"),
        )

    @classmethod
    async def load(cls, conn: psycopg.AsyncConnection) -> InDatabaseConfig:
        names = [f"pgrst.{name}" for name in cls.__dataclass_fields__]
        cursor = await conn.execute(_SETTINGS_SQL, (names,))
        return cls.from_settings(dict(await cursor.fetchall()))


def parse_boolean(text: str) -> bool | None:
    """PostgREST's reading of a boolean setting: ``true``/``false`` in any case (other
    characters than letters ignored), else an integer (``> 0`` is true); None otherwise."""
    letters = "".join(char for char in text if char.isalpha()).lower()
    if letters in {"true", "false"}:
        return letters == "true"
    try:
        return int(text.strip()) > 0
    except ValueError:
        return None


def _boolean(settings: Mapping[str, str], name: str) -> bool:
    default: bool = InDatabaseConfig.__dataclass_fields__[name].default  # type: ignore[assignment]
    text = settings.get(name)
    if text is None:
        return default
    value = parse_boolean(text)
    if value is None:
        log.warning("pgrst.%s = %r is not a boolean; using %s", name, text, default)
        return default
    return value
