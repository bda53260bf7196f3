"""The whole localbase process: PostgreSQL, then migrations, then the API server.

Foreground; SIGINT/SIGTERM stop the API server and then PostgreSQL, leaving nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvicorn

from localbase import keys, migrations, upgrade_denial
from localbase.app import AppConfig, create_app
from localbase.errors import PostgresError
from localbase.postgres import Cluster, ensure_port_free
from localbase.realtime import RealtimeConfig
from localbase.supervisor import PostgresSupervisor, RestartPolicy

log = logging.getLogger("localbase")


@dataclass(frozen=True)
class StackConfig:
    data_dir: Path = Path(".localbase")
    api_port: int = 54321
    db_port: int = 54322
    migrations_dir: Path = Path("supabase/migrations")
    seed: Path = Path("supabase/seed.sql")
    reset: bool = False
    host: str = "127.0.0.1"
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    #: Applied to roles that have no statement timeout yet (hosted Supabase's values).
    statement_timeouts: Mapping[str, str] = field(
        default_factory=lambda: dict(migrations.HOSTED_STATEMENT_TIMEOUTS)
    )
    #: Longer than any common HTTP client keeps an idle connection (httpx 5 s, undici 4 s,
    #: aiohttp 15 s), so a client never reuses a connection the server is closing.
    keep_alive_seconds: int = 75


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def status_block(config: StackConfig) -> str:
    api = f"http://{config.host}:{config.api_port}"
    rows = [
        ("API URL", api),
        ("REST URL", f"{api}/rest/v1"),
        ("Storage URL", f"{api}/storage/v1"),
        ("Realtime URL", f"ws://{config.host}:{config.api_port}/realtime/v1"),
        ("DB URL", f"postgresql://postgres:postgres@127.0.0.1:{config.db_port}/postgres"),
        ("JWT secret", keys.JWT_SECRET),
        ("anon key", keys.ANON_KEY),
        ("service_role key", keys.SERVICE_ROLE_KEY),
        ("Publishable key", keys.PUBLISHABLE_KEY),
        ("Secret key", keys.SECRET_KEY),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:>{width}}: {value}" for name, value in rows)


def run(config: StackConfig) -> None:
    """Start everything, serve until signalled, then stop everything."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    data_dir = config.data_dir.resolve()
    if config.reset and data_dir.exists():
        shutil.rmtree(data_dir)
    ensure_port_free(config.api_port)
    cluster = Cluster(data_dir / "pg", config.db_port)
    fresh = not cluster.initialised
    try:
        if fresh:
            log.info("initialising a new cluster in %s", cluster.pgdata)
            cluster.init()
        cluster.start()
        if fresh:
            migrations.bootstrap(cluster.dsn())
        for upgrade in migrations.upgrade_platform(cluster.dsn()):
            log.info("applied localbase upgrade %s", upgrade)
        for role in migrations.ensure_statement_timeouts(cluster.dsn(), config.statement_timeouts):
            log.info("role %s: statement_timeout %s", role, config.statement_timeouts[role])
        for applied in migrations.apply_pending(cluster.dsn(), config.migrations_dir):
            log.info("applied migration %s_%s", applied.version, applied.name)
        if fresh:
            migrations.apply_seed(cluster.dsn(), config.seed)
        server: uvicorn.Server | None = None

        def stop_server() -> None:
            if server is not None:
                server.should_exit = True

        supervisor = PostgresSupervisor(cluster, config.restart_policy, give_up=stop_server)
        app = create_app(
            AppConfig(
                api_dsn=cluster.dsn("authenticator"),
                admin_dsn=cluster.dsn(),
                storage_dir=data_dir / "storage",
                realtime=config.realtime,
                postgres=supervisor,
            )
        )
        upgrade_denial.install()
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.api_port,
                log_level="warning",
                lifespan="on",
                ws="websockets-sansio",
                # Realtime's endpoint, like Supabase's, neither compresses frames nor accepts
                # frames over 5 MB.
                ws_per_message_deflate=False,
                ws_max_size=5_000_000,
                # Open WebSockets (workers, docks) must not hold a shutdown up.
                timeout_graceful_shutdown=3,
                timeout_keep_alive=config.keep_alive_seconds,
            )
        )
        print(f"localbase started.\n\n{status_block(config)}\n", flush=True)
        server.run()
        if supervisor.failure is not None:
            raise PostgresError(supervisor.failure)
    finally:
        cluster.stop()
        print("localbase stopped.", file=sys.stderr, flush=True)
