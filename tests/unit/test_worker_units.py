"""Worker building blocks without I/O: stop scopes, reasons, document parsing and chunking."""

from __future__ import annotations

import threading
import uuid

import pytest

from devstack.documents import make_epub, make_markdown, make_pdf
from jobdock.models import JobStatus
from worker.feed import JobChanged, job_changed, job_deleted, work_announced
from worker.parsing import DocumentError, parse, split
from worker.stopping import CancelScope, JobCancelled, StopReason, stop_reason


def test_first_reason_wins_and_callbacks_run_once() -> None:
    scope = CancelScope()
    calls: list[str] = []
    scope.on_stop(lambda: calls.append("a"))
    assert scope.stop(StopReason.CANCELLED, "realtime")
    assert not scope.stop(StopReason.DELETED, "realtime")
    scope.on_stop(lambda: calls.append("late"))  # runs at once: already stopped
    assert scope.reason is StopReason.CANCELLED
    assert calls == ["a", "late"]
    with pytest.raises(JobCancelled) as info:
        scope.check()
    assert info.value.reason is StopReason.CANCELLED


def test_stop_from_another_thread_wakes_a_waiter() -> None:
    scope = CancelScope()
    thread = threading.Thread(target=scope.stop, args=(StopReason.SHUTDOWN, "shutdown"))
    thread.start()
    assert scope.flag.wait(5)
    thread.join()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (None, StopReason.DELETED),
        ("cancelled", StopReason.CANCELLED),
        ("failed", StopReason.FORCE_FAILED),
        ("pending", StopReason.LEASE_LOST),
        ("processing", StopReason.LEASE_LOST),
        ("completed", StopReason.LEASE_LOST),
    ],
)
def test_reason_for_status(status: str | None, reason: StopReason) -> None:
    assert StopReason.for_status(status) is reason


def test_a_job_is_still_ours_only_while_processing_under_our_lease() -> None:
    ours, other = uuid.uuid4(), uuid.uuid4()
    assert stop_reason(ours, "processing", ours) is None
    assert stop_reason(ours, "processing", str(ours)) is None  # as read over REST
    assert stop_reason(ours, "processing", other) is StopReason.LEASE_LOST
    assert stop_reason(ours, "processing", None) is StopReason.LEASE_LOST
    assert stop_reason(ours, "cancelled", ours) is StopReason.CANCELLED
    assert stop_reason(ours, "failed", ours) is StopReason.FORCE_FAILED
    assert stop_reason(ours, "pending", None) is StopReason.LEASE_LOST
    assert stop_reason(ours, None, None) is StopReason.DELETED


def test_feed_frames_become_typed_events_or_nothing() -> None:
    job_id, lease = uuid.uuid4(), uuid.uuid4()
    changed = job_changed({"id": str(job_id), "status": "cancelled", "lease_id": str(lease)})
    assert changed == JobChanged(job_id, JobStatus.CANCELLED, lease)
    assert job_changed({"id": "not-a-uuid", "status": "cancelled"}) is None
    assert job_changed({"id": str(job_id), "status": "exploded"}) is None
    assert job_changed({"status": "cancelled"}) is None
    assert job_deleted({"id": str(job_id)}) is not None
    assert job_deleted({}) is None


def test_split_respects_the_limit_and_keeps_all_text() -> None:
    text = "\n\n".join(["short"] * 5 + ["word " * 700] + ["end"])
    pieces = split(text, limit=200)
    assert all(0 < len(p) <= 200 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_parsers_find_chapters() -> None:
    assert [c.title for c in parse("b.epub", make_epub([("A", "x"), ("B", "y")]))] == ["A", "B"]
    assert [c.title for c in parse("b.md", make_markdown([("A", "x"), ("B", "y")]))] == ["A", "B"]
    assert [c.text for c in parse("b.pdf", make_pdf(["one", "two"]))] == ["one", "two"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("x.epub", b"nope"),
        ("x.pdf", b"nope"),
        ("x.txt", b"\xff\xfe"),
        ("x.doc", b"hello"),
        ("x.md", b""),
    ],
)
def test_parse_errors_are_readable(name: str, data: bytes) -> None:
    with pytest.raises(DocumentError) as info:
        parse(name, data)
    assert name.split(".")[0] in str(info.value) or "not" in str(info.value)


@pytest.mark.parametrize(
    ("announced", "wakes"),
    [
        ({"job_types": ["demo.sleep", "other"], "jobs": 2}, True),
        ({"job_types": ["other"], "jobs": 1}, False),
        ({"job_type": "demo.sleep", "status": "pending"}, True),
        ({"job_type": "other", "status": "pending"}, False),
        ({}, True),  # says nothing about its type: claim to find out
    ],
)
def test_new_work_wakes_the_claim_loop_only_for_handled_types(
    announced: dict[str, object], wakes: bool
) -> None:
    assert work_announced(announced).concerns(("demo.sleep",)) is wakes
    assert work_announced(announced).concerns(None)  # a worker of every type always looks


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBDOCK_DOCUMENT_MEMORY_BYTES", "lots", "JOBDOCK_DOCUMENT_MEMORY_BYTES must be a number"),
        ("JOBDOCK_DOCUMENT_MAX_PDF_PAGES", "-3", "JOBDOCK_DOCUMENT_MAX_PDF_PAGES must be positive"),
        ("SUPABASE_URL", "not a url", "is not an http(s) URL"),
    ],
)
def test_a_malformed_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    from jobdock.settings import get_settings
    from worker.cli import main

    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert main([]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
