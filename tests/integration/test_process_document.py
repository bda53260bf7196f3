"""``process_document`` end to end: Storage → worker → chunks written with the completion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devstack.documents import make_epub, make_markdown, make_pdf
from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
from jobdock import actions
from jobdock.documents import Upload, upload_document
from supabase import Client
from tests.helpers import finished

CHAPTERS = [
    ("Opening", "It was a bright cold day.\n\nThe clocks were striking."),
    ("Middle", "Things happened.\n\n" + "Long paragraph. " * 200),
    ("Ending", "And that was that."),
]


def chunks(
    admin_sql_rows: Callable[[str], list[tuple[Any, ...]]], job_id: uuid.UUID
) -> list[tuple[Any, ...]]:
    return admin_sql_rows(
        f"select chapter_index, chapter_title, content from"
        f" public.document_chunks where job_id = '{job_id}' order by chunk_index"
    )


@pytest.fixture
def rows(localbase: LocalbaseProcess) -> Callable[[str], list[tuple[Any, ...]]]:
    import psycopg

    def run(statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(localbase.db_dsn) as conn:
            return conn.execute(statement.encode()).fetchall()

    return run


@pytest.mark.parametrize(
    ("filename", "content", "titles"),
    [
        ("book.epub", make_epub(CHAPTERS), [t for t, _ in CHAPTERS]),
        ("notes.md", make_markdown(CHAPTERS), [t for t, _ in CHAPTERS]),
        ("plain.txt", b"Just one chapter.\n\nTwo paragraphs.", [None]),
        ("paper.pdf", make_pdf(["First page", "Second page"]), ["Page 1", "Page 2"]),
    ],
)
def test_documents_are_chunked_with_the_completion(
    document_worker: WorkerProcess,
    service_client: Client,
    rows: Callable[[str], list[Any]],
    filename: str,
    content: bytes,
    titles: list[str | None],
) -> None:
    job = upload_document(service_client, Upload(filename, content))
    done = finished(service_client, job.id)
    assert done.status.value == "completed", done.last_error
    assert done.output_data["chapters"] == len(titles)
    stored = chunks(rows, job.id)
    assert len(stored) == done.output_data["chunks"]
    assert sorted({(c[0], c[1]) for c in stored}) == list(enumerate(titles))
    assert all(0 < len(c[2]) <= 1200 for c in stored)
    assert done.progress.percent == 100


@pytest.mark.parametrize(
    ("filename", "content", "error"),
    [
        ("broken.epub", b"PK\x03\x04 this is not a zip", "not a readable EPUB file"),
        ("broken.pdf", b"%PDF-1.4 nothing else", "not a readable PDF file"),
        ("binary.txt", b"\xff\xfe\x00\x01", "not a UTF-8 text file"),
        ("empty.md", b"   \n\n  ", "no text found"),
    ],
)
def test_corrupt_documents_fail_readably(
    document_worker: WorkerProcess,
    service_client: Client,
    rows: Callable[[str], list[Any]],
    filename: str,
    content: bytes,
    error: str,
) -> None:
    path = f"service/{uuid.uuid4()}/{filename}"
    service_client.storage.from_("documents").upload(path, content, {"content-type": "text/plain"})
    job = actions.enqueue(
        service_client,
        "process_document",
        {"bucket": "documents", "path": path, "filename": filename},
        max_retries=0,
    )
    done = finished(service_client, job.id)
    assert done.status.value == "failed"
    assert error in (done.last_error or "")
    assert chunks(rows, job.id) == []
    assert "Traceback" not in (done.last_error or "")
