"""Rules that keep jobs safe, in SQL: documents belong to their owner, job types must be
registered, permanent failures are final, one attempt at a time, chunks written in parts."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from jobdock import actions
from jobdock.errors import BackendError
from supabase import Client
from tests.conftest import user_client
from tests.helpers import Sql, claim, enqueue, events, status


def document(path: str, bucket: str = "documents") -> dict[str, Any]:
    return {"bucket": bucket, "path": path, "filename": path.rsplit("/", 1)[-1]}


# -- documents belong to their owner --
def test_a_user_may_name_only_documents_in_their_own_folder(
    sql: Sql, localbase: LocalbaseProcess
) -> None:
    alice_id, bob_id = str(uuid.uuid4()), str(uuid.uuid4())
    bob = user_client(localbase, bob_id)
    own = actions.enqueue(bob, "process_document", document(f"{bob_id}/x/notes.md"))
    assert own.user_id is not None
    assert str(own.user_id) == bob_id
    hostile = [
        (document(f"{alice_id}/diary.txt"), "is not in the job owner's folder"),
        (document("service/secret.txt"), "is not in the job owner's folder"),
        (document(f"{bob_id}/env.txt", bucket="secrets"), 'reads only the "documents" bucket'),
        (document(f"{bob_id}/../{alice_id}/diary.txt"), "is not a valid document path"),
        ({"bucket": "documents"}, 'needs the document\'s Storage "bucket" and "path"'),
        ({"bucket": "documents", "path": ["a"]}, "needs the document"),
    ]
    for data, message in hostile:
        with pytest.raises(BackendError) as info:
            actions.enqueue(bob, "process_document", data)
        assert message in str(info.value), data
    with pytest.raises(APIError) as direct:  # a direct insert meets the same rule
        bob.table("background_jobs").insert(
            {"job_type": "process_document", "input_data": document(f"{alice_id}/diary.txt")}
        ).execute()
    assert direct.value.code == "23514"
    assert "not in the job owner's folder" in (direct.value.message or "")
    assert [j.id for j in actions.list_jobs(bob)] == [own.id]


def test_ownerless_jobs_name_the_service_folder_and_edits_are_checked(
    sql: Sql, service_client: Client
) -> None:
    job = actions.enqueue(service_client, "process_document", document("service/a/book.epub"))
    with pytest.raises(BackendError, match="not in the job owner's folder"):
        actions.enqueue(service_client, "process_document", document(f"{uuid.uuid4()}/diary.txt"))
    with pytest.raises(psycopg.errors.CheckViolation, match="not in the job owner's folder"):
        sql(
            "update public.background_jobs set input_data = %s where id = %s",
            json.dumps(document(f"{uuid.uuid4()}/diary.txt")),
            str(job.id),
        )


def test_the_worker_check_refuses_a_row_that_bypassed_the_rule(sql: Sql) -> None:
    victim = str(uuid.uuid4())
    sql("set session_replication_role = replica")  # triggers off: an old or forged row
    try:
        rows = sql(
            "insert into public.background_jobs (job_type, input_data, user_id)"
            " values ('process_document', %s, %s) returning id",
            json.dumps(document(f"{victim}/diary.txt")),
            str(uuid.uuid4()),
        )
    finally:
        sql("set session_replication_role = origin")
    job_id, lease = claim(sql)
    assert job_id == str(rows[0][0])
    refusal = sql("select refusal from public.check_document_job(%s, %s)", job_id, lease)
    assert "is not in the job owner's folder" in refusal[0][0]
    # Not the caller's lease: no answer at all.
    assert sql("select * from public.check_document_job(%s, %s)", job_id, str(uuid.uuid4())) == []


# -- job types --
def test_unknown_job_types_are_refused_unless_forced(
    sql: Sql, localbase: LocalbaseProcess, service_client: Client
) -> None:
    name = f"test.unknown-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BackendError, match=f"no worker handles job type '{name}'"):
        actions.enqueue(service_client, name)
    user = user_client(localbase, str(uuid.uuid4()))
    with pytest.raises(APIError) as info:
        user.table("background_jobs").insert({"job_type": name}).execute()
    assert info.value.code == "23514"
    with pytest.raises(psycopg.errors.CheckViolation, match="no worker handles"):
        sql("insert into public.background_jobs (job_type) values (%s)", name)
    forced = actions.enqueue(user, name, force=True)
    assert forced.job_type == name
    assert forced.status.value == "pending"
    # A worker registers the types it runs with its heartbeat; then they are accepted.
    registered = f"test.registered-{uuid.uuid4().hex[:8]}"
    sql("select public.worker_heartbeat('w1', 30, null, 'host', 1, %s)", [registered])
    assert actions.enqueue(user, registered).job_type == registered
    assert sql("select job_types from public.job_workers where id = 'w1'") == [([registered],)]


# -- permanent failures --
def test_a_permanent_failure_is_final_and_marked_not_retryable(sql: Sql) -> None:
    job_id = enqueue(sql)
    _, lease = claim(sql)
    assert sql("select public.fail_job(%s, %s, 'bad file', false)", job_id, lease) == [("failed",)]
    assert sql(
        "select retry_count, next_retry_at from public.background_jobs where id = %s", job_id
    ) == [(0, None)]
    failed = sql(
        "select detail from public.job_events where job_id = %s and event = 'failed'", job_id
    )
    assert failed[0][0]["retryable"] is False
    other = enqueue(sql)
    _, lease = claim(sql)
    sql("select public.fail_job(%s, %s, 'flaky')", other, lease)
    assert sql(
        "select next_retry_at is not null from public.background_jobs where id = %s", other
    ) == [(True,)]


# -- one attempt at a time --
def test_a_job_taken_away_is_not_claimed_again_until_its_stop_is_recorded(sql: Sql) -> None:
    sql("select public.worker_heartbeat('w1', 30)")
    job_id = enqueue(sql, max_retries=3)
    _, lease = claim(sql, "w1")
    sql("select public.force_fail(%s)", job_id)
    sql("select public.retry_job(%s)", job_id)
    assert status(sql, job_id) == "pending"
    assert sql("select count(*) from public.claim_jobs('w2')") == [(0,)]  # w1 still stopping
    stop = [{"id": job_id, "lease_id": lease, "reason": "force_failed",
             "stopped_at": "2026-01-01T00:00:00Z"}]  # fmt: skip
    sql("select public.record_stops('w1', %s)", json.dumps(stop))
    claimed, new_lease = claim(sql, "w2")
    assert claimed == job_id
    assert new_lease != lease
    assert events(sql, job_id)[-2:] == ["stopped", "claimed"]


def test_a_job_taken_from_a_dead_worker_is_claimed_without_its_stop(sql: Sql) -> None:
    sql("select public.worker_heartbeat('w1', 30)")
    job_id = enqueue(sql)
    claim(sql, "w1")
    sql("update public.background_jobs set status = 'pending' where id = %s", job_id)  # Studio
    assert sql("select count(*) from public.claim_jobs('w2')") == [(0,)]
    sql("update public.job_workers set heartbeat_at = now() - interval '1 minute'")
    assert claim(sql, "w2")[0] == job_id


# -- chunks in parts --
def enqueue_document(sql: Sql, path: str) -> str:
    rows = sql(
        "select id from public.enqueue_job('process_document', %s)", json.dumps(document(path))
    )
    return str(rows[0][0])


def chunk_rows(start: int, count: int) -> str:
    return json.dumps(
        [
            {"chunk_index": i, "chapter_index": 0, "chapter_title": "T", "content": f"c{i}"}
            for i in range(start, start + count)
        ]
    )


def test_chunks_written_in_parts_land_with_the_completion(sql: Sql) -> None:
    job_id = enqueue_document(sql, "service/a.md")
    _, lease = claim(sql)
    assert sql("select public.stage_document_chunks(%s, %s, %s)", job_id, lease, chunk_rows(0, 3))
    # A part sent twice (a retried request) is written once.
    assert sql("select public.stage_document_chunks(%s, %s, %s)", job_id, lease, chunk_rows(0, 3))
    assert sql("select count(*) from public.document_chunks where job_id = %s", job_id) == [(0,)]
    assert sql(
        "select public.complete_document_job(%s, %s, '{}', %s)", job_id, lease, chunk_rows(3, 2)
    ) == [(True,)]
    assert sql(
        "select array_agg(content order by chunk_index) from public.document_chunks"
        " where job_id = %s",
        job_id,
    ) == [(["c0", "c1", "c2", "c3", "c4"],)]
    assert sql("select count(*) from public.document_chunks_staged") == [(0,)]


def test_parts_of_an_attempt_that_does_not_complete_are_removed(sql: Sql) -> None:
    job_id = enqueue_document(sql, "service/b.md")
    _, lease = claim(sql)
    sql("select public.stage_document_chunks(%s, %s, %s)", job_id, lease, chunk_rows(0, 2))
    sql("select public.request_cancel(%s)", job_id)
    assert sql("select count(*) from public.document_chunks_staged where job_id = %s", job_id) == [
        (0,)
    ]
    # The old lease can stage nothing more, nor complete.
    assert sql(
        "select public.stage_document_chunks(%s, %s, %s)", job_id, lease, chunk_rows(2, 1)
    ) == [(False,)]
    assert sql("select public.complete_document_job(%s, %s, '{}', '[]')", job_id, lease) == [
        (False,)
    ]
    assert sql("select count(*) from public.document_chunks where job_id = %s", job_id) == [(0,)]
