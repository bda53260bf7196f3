"""``process_document``: read a document from Storage, split it into chapters and chunks.

The handler itself is cooperative (stopping cancels it). The download is checked by the
worker against the job's owner (``Worker._download``). Parsing runs in an isolated child
process with memory and CPU limits (``worker.isolation``): a stop kills the parser at once,
and a hostile document can cost at most those limits, never the worker. Over-limit and
unreadable documents fail for good (``PermanentError``); the chunks are written with the
completion, so a stopped job leaves none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from worker import isolation
from worker.context import Result
from worker.parsing import DocumentError, DocumentLimits, parse, split

if TYPE_CHECKING:
    from worker.context import JobContext

ENV_PREFIX = "JOBDOCK_DOCUMENT_"


@dataclass(frozen=True)
class DocumentConfig:
    """Limits of one ``process_document`` attempt: the parser's own (sizes, pages, text) and
    its process's. Every field can be set as ``JOBDOCK_DOCUMENT_<FIELD>`` in the worker's
    environment, e.g. ``JOBDOCK_DOCUMENT_MEMORY_BYTES=2147483648``."""

    limits: DocumentLimits = field(default_factory=DocumentLimits)
    #: Address space of the parser process (``RLIMIT_AS``).
    memory_bytes: int = 2 * 1024**3
    #: CPU time of the parser process (``RLIMIT_CPU``).
    cpu_seconds: int = 120

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DocumentConfig:
        def read(target: Any) -> dict[str, Any]:
            values: dict[str, Any] = {}
            for item in dataclasses.fields(target):
                raw = environ.get(f"{ENV_PREFIX}{item.name.upper()}")
                if raw is not None:
                    values[item.name] = _number(raw, f"{ENV_PREFIX}{item.name.upper()}")
            return values

        return cls(limits=DocumentLimits(**read(DocumentLimits)), **read(cls))

    @property
    def process_limits(self) -> isolation.ProcessLimits:
        return isolation.ProcessLimits(self.memory_bytes, self.cpu_seconds)


def _number(raw: str, name: str) -> int | float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class Source:
    """Where the job's document is, as its input names it."""

    bucket: str
    path: str
    filename: str

    @classmethod
    def from_input(cls, data: Mapping[str, Any]) -> Source:
        bucket, path = data.get("bucket"), data.get("path")
        if not isinstance(bucket, str) or not isinstance(path, str) or not bucket or not path:
            raise DocumentError("input_data needs the document's Storage 'bucket' and 'path'")
        filename = data.get("filename")
        name = filename if isinstance(filename, str) and filename else PurePosixPath(path).name
        return cls(bucket, path, name)


class DocumentProcessor:
    """The ``process_document`` handler, with its limits."""

    def __init__(self, config: DocumentConfig | None = None) -> None:
        self.config = config or DocumentConfig()

    async def __call__(self, ctx: JobContext, data: dict[str, Any]) -> Result:
        source = Source.from_input(data)
        await ctx.progress(0, "downloading", source.filename)
        content = await ctx.download(source.bucket, source.path)
        await ctx.progress(5, "parsing", source.filename)
        with tempfile.TemporaryDirectory(prefix="jobdock-") as folder:
            copy = Path(folder) / "document"
            await asyncio.to_thread(copy.write_bytes, content)
            del content
            output, chunks = await isolation.call(
                parse_document,
                (str(copy), source.filename, self.config.limits, _pace(data)),
                report=lambda value: _forward(ctx, value),
                limits=self.config.process_limits,
                name=f"parser-{ctx.job.id}",
            )
        return Result(output, chunks)


def _forward(ctx: JobContext, value: Any) -> None:
    if isinstance(value, dict) and not ctx.stopped:
        ctx.report(value.get("percent"), value.get("stage"), value.get("message"))


def _pace(data: Mapping[str, Any]) -> float:
    """Optional pause per chapter, so a demo (or a test) can watch a small document progress."""
    pace = data.get("pace_seconds")
    return float(pace) if isinstance(pace, int | float) and 0 < pace <= 60 else 0.0


def parse_document(
    path: str, name: str, limits: DocumentLimits, pace: float, report: Callable[[Any], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """In the parser process: the document at ``path`` into its output summary and chunks."""
    chapters = parse(name, Path(path).read_bytes(), limits)
    chunks: list[dict[str, Any]] = []
    reported = 0.0
    for index, chapter in enumerate(chapters):
        if pace:
            time.sleep(pace)
        for piece in split(chapter.text):
            chunks.append(
                {
                    "chunk_index": len(chunks),
                    "chapter_index": index,
                    "chapter_title": chapter.title,
                    "content": piece,
                }
            )
        now = time.monotonic()
        if pace or now - reported >= 0.25 or index + 1 == len(chapters):
            reported = now
            report(
                {
                    "percent": 5 + 95 * (index + 1) / len(chapters),
                    "stage": "chapters",
                    "message": f"chapter {index + 1} of {len(chapters)}",
                }
            )
    output = {
        "filename": name,
        "chapters": len(chapters),
        "chunks": len(chunks),
        "characters": sum(len(c.text) for c in chapters),
        "titles": [c.title for c in chapters][:50],
    }
    return output, chunks
