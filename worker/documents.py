"""``process_document``: download from Storage, split into chapters and chunks.

EPUB through ``ebooklib`` + BeautifulSoup, PDF through ``pypdf``, text and Markdown by
headings. Progress is reported per chapter and the stop flag is checked between chapters;
the chunks are written atomically with the completion (``complete_document_job``), so a
stopped job leaves none. Corrupt or unsupported files fail with a readable error.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from worker.handlers import Result
from worker.parsing import DocumentError, parse, split

if TYPE_CHECKING:
    from worker.context import JobContext


def process_document(ctx: JobContext, data: dict[str, Any]) -> Result:
    bucket, path = data.get("bucket"), data.get("path")
    if not isinstance(bucket, str) or not isinstance(path, str):
        raise DocumentError("input_data needs the document's Storage 'bucket' and 'path'")
    name = str(data.get("filename") or PurePosixPath(path).name)
    ctx.report(0, "downloading", name)
    content = ctx.download_blocking(bucket, path)
    ctx.report(5, "parsing", name)
    chapters = parse(name, content)
    # Optional pause per chapter, so a demo (or a test) can watch a small document progress.
    pace = data.get("pace_seconds")
    pace = float(pace) if isinstance(pace, int | float) and 0 < pace <= 60 else 0.0
    chunks: list[dict[str, Any]] = []
    for index, chapter in enumerate(chapters):
        if pace:
            ctx.wait(pace)
        else:
            ctx.check()
        for piece in split(chapter.text):
            chunks.append(
                {
                    "chunk_index": len(chunks),
                    "chapter_index": index,
                    "chapter_title": chapter.title,
                    "content": piece,
                }
            )
        ctx.report(
            5 + 95 * (index + 1) / len(chapters),
            "chapters",
            f"chapter {index + 1} of {len(chapters)}",
        )
    output = {
        "filename": name,
        "chapters": len(chapters),
        "chunks": len(chunks),
        "characters": sum(len(c.text) for c in chapters),
        "titles": [c.title for c in chapters][:50],
    }
    return Result(output, chunks)
