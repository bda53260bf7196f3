"""Supabase bootstrap, project migrations and the seed, tracked like the Supabase CLI does.

localbase's own platform objects come from ``sql/bootstrap.sql`` (a fresh cluster) and then the
``sql/upgrade_<version>_<name>.sql`` scripts, applied once each on every start and recorded in
``_localbase.upgrades``, so a data dir made by an older localbase gets them too.

Migrations are ``<version>_<name>.sql`` files applied in version order, each in its own
transaction, and recorded in ``supabase_migrations.schema_migrations``; a restart applies only
the ones added since.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from localbase.errors import MigrationError

_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(match["version"], match["name"], path))
    return sorted(found, key=lambda m: m.version)


def bootstrap(dsn: str) -> None:
    """Create Supabase's roles and schemas in a fresh cluster."""
    script = resources.files("localbase").joinpath("sql/bootstrap.sql").read_text()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script.encode())


_UPGRADE = re.compile(r"^upgrade_(?P<version>\d+)_(?P<name>.+)\.sql$")
_UPGRADES_TABLE_SQL = """
create schema if not exists _localbase;
create table if not exists _localbase.upgrades (
    version text primary key,
    name text not null,
    applied_at timestamptz not null default now()
);
"""


def upgrade_platform(dsn: str) -> list[str]:
    """Apply localbase's platform upgrades not applied to this cluster yet; return their names."""
    scripts = sorted(
        (match["version"], match["name"], entry.read_text())
        for entry in resources.files("localbase").joinpath("sql").iterdir()
        if (match := _UPGRADE.match(entry.name))
    )
    applied = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_UPGRADES_TABLE_SQL.encode())
        done = {row[0] for row in conn.execute("select version from _localbase.upgrades")}
        for version, name, text in scripts:
            if version in done:
                continue
            try:
                with conn.transaction():
                    conn.execute(text.encode())
                    conn.execute(
                        "insert into _localbase.upgrades (version, name) values (%s, %s)",
                        (version, name),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"localbase upgrade {version}_{name}: {exc.diag.message_primary or exc}"
                ) from exc
            applied.append(f"{version}_{name}")
    return applied


#: Hosted Supabase's statement timeouts of the API roles.
HOSTED_STATEMENT_TIMEOUTS: Final = {"anon": "3s", "authenticated": "8s", "authenticator": "8s"}

_HAS_TIMEOUT_SQL = """
select 1 from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where r.rolname = %s and s.setdatabase = 0
  and exists (select from unnest(s.setconfig) c where c like 'statement_timeout=%%')
"""


def ensure_statement_timeouts(dsn: str, timeouts: Mapping[str, str]) -> list[str]:
    """Give each role its statement timeout unless it already has one (a migration's
    ``alter role anon set statement_timeout = '10s'`` is kept); return the roles changed."""
    changed = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role, timeout in timeouts.items():
            if conn.execute(_HAS_TIMEOUT_SQL, (role,)).fetchone() is not None:
                continue
            conn.execute(
                sql.SQL("alter role {} set statement_timeout = {}").format(
                    sql.Identifier(role), sql.Literal(timeout)
                )
            )
            changed.append(role)
    return changed


def apply_pending(dsn: str, directory: Path) -> list[Migration]:
    """Apply the migrations not recorded yet; return them."""
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        done = {
            row[0]
            for row in conn.execute("select version from supabase_migrations.schema_migrations")
        }
        for migration in discover(directory):
            if migration.version in done:
                continue
            text = migration.path.read_text()
            _run_script(conn, text, migration.path, record=migration)
            applied.append(migration)
    return applied


def apply_seed(dsn: str, seed: Path) -> None:
    if not seed.is_file():
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        _run_script(conn, seed.read_text(), seed, record=None)


def _run_script(conn: psycopg.Connection, text: str, path: Path, record: Migration | None) -> None:
    try:
        with conn.transaction():
            if text.strip():
                conn.execute(text.encode())
            if record is not None:
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements)"
                    " values (%s, %s, %s)",
                    (record.version, record.name, [text]),
                )
    except psycopg.Error as exc:
        raise MigrationError(f"{path}: {exc.diag.message_primary or exc}") from exc
