"""Fixtures of the integration tests: SQL on the session's localbase, as ``postgres`` (what
Supabase Studio does), with the job tables emptied first; a worker for ``process_document``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
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


@pytest.fixture(scope="module")
def document_worker(
    localbase: LocalbaseProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker that takes only ``process_document`` jobs, for one module."""
    process = WorkerProcess(
        localbase,
        tmp_path_factory.mktemp("documents") / "worker.log",
        "documents",
        ("--job-types", "process_document", "--concurrency", "2"),
    ).start()
    yield process
    assert process.stop() == 0
