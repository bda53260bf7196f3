"""Worker building blocks without I/O: stop scopes, reasons, document parsing and chunking."""

from __future__ import annotations

import threading

import pytest

from tests.documents import make_epub, make_markdown, make_pdf
from worker.engine import Worker, WorkerConfig
from worker.handlers import default_registry
from worker.parsing import DocumentError, parse, split
from worker.stopping import CancelScope, JobCancelled, StopReason


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
    worker = Worker(
        WorkerConfig("http://127.0.0.1:1", "key", job_types=("demo.sleep",)), default_registry()
    )
    worker._backlog = False
    worker._on_new_work(announced)
    assert worker.wake.is_set() is wakes
    assert worker._backlog is wakes
