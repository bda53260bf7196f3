"""Documents into chapters: EPUB through ``ebooklib``, PDF through ``pypdf``, text and Markdown
by headings; chapters into chunks. Pure functions of bytes, run in the isolated parser process.

Corrupt or unsupported files raise ``DocumentError`` with a message for the user.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

CHUNK_CHARS = 1200


class DocumentError(Exception):
    """The document cannot be processed; the message is shown to the user as ``last_error``."""


@dataclass(frozen=True)
class Chapter:
    title: str | None
    text: str


def parse(name: str, content: bytes) -> list[Chapter]:
    suffix = PurePosixPath(name).suffix.lower()
    parsers = {".epub": parse_epub, ".pdf": parse_pdf, ".txt": parse_text, ".md": parse_text}
    if suffix not in parsers:
        raise DocumentError(f"{name}: unsupported document type {suffix or '(none)'}")
    chapters = [c for c in parsers[suffix](content) if c.text.strip()]
    if not chapters:
        raise DocumentError(f"{name}: no text found in the document")
    return chapters


def parse_epub(content: bytes) -> list[Chapter]:
    from bs4 import BeautifulSoup
    from ebooklib import ITEM_DOCUMENT, epub

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
            book = epub.read_epub(io.BytesIO(content), options={"ignore_ncx": True})
    except (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        AttributeError,
        OSError,
        epub.EpubException,
    ) as exc:
        raise DocumentError(f"not a readable EPUB file ({exc})") from exc
    chapters = []
    spine = [book.get_item_with_id(ref) for ref, _ in book.spine]
    items = [i for i in spine if i is not None and i.get_type() == ITEM_DOCUMENT] or list(
        book.get_items_of_type(ITEM_DOCUMENT)
    )
    for item in items:
        if isinstance(item, epub.EpubNav) or not getattr(item, "is_chapter", lambda: True)():
            continue
        soup = BeautifulSoup(item.get_content(), "html.parser")
        heading = soup.find(["h1", "h2", "h3", "title"])
        title = heading.get_text(" ", strip=True) if heading else None
        text = "\n\n".join(
            p.get_text(" ", strip=True) for p in soup.find_all(["p", "li", "h1", "h2", "h3"])
        )
        chapters.append(Chapter(title, text or soup.get_text(" ", strip=True)))
    return chapters


def parse_pdf(content: bytes) -> list[Chapter]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"not a readable PDF file ({exc})") from exc
    return [Chapter(f"Page {n}", text) for n, text in enumerate(pages, start=1)]


_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def parse_text(content: bytes) -> list[Chapter]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError("not a UTF-8 text file") from exc
    if "\x00" in text:
        raise DocumentError("not a text file (it contains binary data)")
    marks = list(_HEADING.finditer(text))
    if not marks:
        return [Chapter(None, text)]
    chapters = []
    if text[: marks[0].start()].strip():
        chapters.append(Chapter(None, text[: marks[0].start()]))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        chapters.append(Chapter(mark.group(2), text[mark.end() : end]))
    return chapters


def split(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Chunks of at most ``limit`` characters, cut at paragraph (then word) boundaries."""
    chunks: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        while len(paragraph) > limit:
            cut = paragraph.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                chunks.append(current)
                current = ""
            chunks.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if current and len(current) + 2 + len(paragraph) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks
