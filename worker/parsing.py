"""Documents into chapters: EPUB through ``ebooklib`` and ``lxml``, PDF through ``pypdf``, text
and Markdown by headings; chapters into chunks. Pure functions of bytes, run in the isolated
parser process.

Every document is read within :class:`DocumentLimits`. An EPUB's zip directory is checked
before anything is inflated (member count, each member's declared size and compression ratio,
the declared total), and each member is then inflated in bounded chunks, counted against the
same limits, so a size that lies is caught while it inflates. XHTML is parsed as a stream of
events (libxml2 keeps its own depth and size protections) and its text is counted as it
arrives. PDF streams are decoded under pypdf's output limits, set from ours.

Errors::

    DocumentError     the document cannot be processed (corrupt, unsupported, no text)
    └── LimitExceeded the document is over one of the limits

Both are permanent and their messages are written for the user.
"""

from __future__ import annotations

import copy
import functools
import io
import posixpath
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from jobdock.formats import CONTENT_TYPES
from worker.errors import PermanentError

if TYPE_CHECKING:
    import pypdf

CHUNK_CHARS = 1200
KiB = 1024
MiB = 1024 * KiB
# libxml2 stops parsing silently below this depth unless it is told the input is trusted.
_LIBXML2_MAX_DEPTH = 256


class DocumentError(PermanentError):
    """The document cannot be processed; the message is shown to the user as ``last_error``."""


class LimitExceeded(DocumentError):
    """The document is over one of its :class:`DocumentLimits`; the message names which, where."""


@dataclass(frozen=True)
class DocumentLimits:
    """What one document may cost to read. The defaults suit documents up to a 50 MB upload."""

    #: Uncompressed size of one EPUB member, or of one decoded PDF stream.
    max_member_bytes: int = 64 * MiB
    #: Uncompressed size of the members of an EPUB that are read, together.
    max_total_bytes: int = 256 * MiB
    #: Uncompressed to compressed size of one EPUB member...
    max_compression_ratio: float = 100.0
    #: ...checked only once the member is larger than this (small files compress any way).
    ratio_free_bytes: int = 1 * MiB
    #: Files in an EPUB's zip directory.
    max_archive_members: int = 10_000
    #: Text of one chapter (an EPUB chapter, a PDF page, a Markdown section).
    max_chapter_characters: int = 64 * MiB
    #: Pages of a PDF.
    max_pdf_pages: int = 2_000
    #: Nested elements in an XHTML chapter (at most 256, where libxml2 stops on its own).
    max_xhtml_depth: int = _LIBXML2_MAX_DEPTH

    def __post_init__(self) -> None:
        if not 0 < self.max_xhtml_depth <= _LIBXML2_MAX_DEPTH:
            raise ValueError(f"max_xhtml_depth must be within 1..{_LIBXML2_MAX_DEPTH}")


DEFAULT_LIMITS = DocumentLimits()


@dataclass(frozen=True)
class Chapter:
    title: str | None
    text: str


def parse(name: str, content: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> list[Chapter]:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in CONTENT_TYPES:  # the accepted types: jobdock.formats
        raise DocumentError(f"{name}: unsupported document type {suffix or '(none)'}")
    # EPUB and PDF have parsers of their own; the other accepted types are text.
    parser = {".epub": parse_epub, ".pdf": parse_pdf}.get(suffix, parse_text)
    chapters = [c for c in parser(content, limits) if c.text.strip()]
    if not chapters:
        raise DocumentError(f"{name}: no text found in the document")
    return chapters


def _size(count: int) -> str:
    """``count`` bytes for a reader: "812 bytes", "900 KiB", "64 MiB", "1.5 GiB"."""
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= scale:
            return f"{count / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{count:,} bytes"


def _ratio_problem(inflated: int, compressed: int, limits: DocumentLimits, more: str) -> str | None:
    ratio = inflated / max(compressed, 1)
    if inflated <= limits.ratio_free_bytes or ratio <= limits.max_compression_ratio:
        return None
    return (
        f"is compressed {more}{ratio:,.0f} to 1 ({_size(compressed)} to {more}"
        f"{_size(inflated)}); limit {limits.max_compression_ratio:,.0f} to 1"
    )


# EPUB -------------------------------------------------------------------------------------


def parse_epub(content: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> list[Chapter]:
    from ebooklib import epub

    etree = _etree()
    archive = _Archive.open(content, limits)
    reader = _bounded_reader()(archive)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
            book = reader.load()
    except (
        zipfile.BadZipFile,
        KeyError,
        IndexError,
        ValueError,
        AttributeError,
        OSError,
        etree.LxmlError,
        epub.EpubException,
    ) as exc:
        archive.raise_over_limit({})  # an emptied member is why ebooklib could not go on
        raise DocumentError(f"not a readable EPUB file ({exc})") from exc
    items = _chapter_items(book)
    names = [posixpath.normpath(posixpath.join(reader.opf_dir, i.get_name())) for i in items]
    labels = {name: f"chapter {n} ({name})" for n, name in enumerate(names, start=1)}
    archive.raise_over_limit(labels)
    return [
        _xhtml_chapter(item.content, labels[name], limits, body=isinstance(item, epub.EpubHtml))
        for item, name in zip(items, names, strict=True)
    ]


def _chapter_items(book: Any) -> list[Any]:
    from ebooklib import ITEM_DOCUMENT, epub

    spine = [book.get_item_with_id(ref) for ref, _ in book.spine]
    items = [i for i in spine if i is not None and i.get_type() == ITEM_DOCUMENT] or list(
        book.get_items_of_type(ITEM_DOCUMENT)
    )
    return [
        item
        for item in items
        if not isinstance(item, epub.EpubNav) and getattr(item, "is_chapter", lambda: True)()
    ]


@dataclass
class _Archive:
    """An EPUB's zip, read within limits.

    Archive-wide limits fail at once. A member over a limit is left unread (its content reads
    as empty) and reported by :meth:`raise_over_limit` once the book's spine can name it
    ("chapter 3 (OEBPS/ch3.xhtml)").
    """

    content: bytes
    zip: zipfile.ZipFile
    limits: DocumentLimits
    over_limit: dict[str, str] = field(default_factory=dict)  # member → what is wrong
    read_bytes: int = 0

    CHUNK_BYTES = 256 * KiB

    @classmethod
    def open(cls, content: bytes, limits: DocumentLimits) -> _Archive:
        # Each central-directory entry starts with this signature: count them before zipfile
        # builds an object per entry.
        if (listed := content.count(b"PK\x01\x02")) > limits.max_archive_members:
            raise LimitExceeded(
                f"the EPUB lists {listed:,} files; limit {limits.max_archive_members:,}"
            )
        try:
            archive = cls(content, zipfile.ZipFile(io.BytesIO(content)), limits)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise DocumentError(f"not a readable EPUB file ({exc})") from exc
        archive.check_directory()
        return archive

    def check_directory(self) -> None:
        """The declared sizes, before anything is inflated."""
        infos, limits = self.zip.infolist(), self.limits
        if len(infos) > limits.max_archive_members:
            raise LimitExceeded(
                f"the EPUB has {len(infos):,} files; limit {limits.max_archive_members:,}"
            )
        total = sum(info.file_size for info in infos)
        if total > limits.max_total_bytes:
            raise LimitExceeded(
                f"the EPUB's files inflate to {_size(total)} in total;"
                f" limit {_size(limits.max_total_bytes)}"
            )
        for info in infos:
            if problem := self.problem(info.file_size, info.compress_size, "declared"):
                self.over_limit.setdefault(info.filename, problem)

    def problem(self, inflated: int, compressed: int, how: str) -> str | None:
        limits = self.limits
        more = "" if how == "declared" else "more than "
        if inflated > limits.max_member_bytes:
            shown = inflated if how == "declared" else limits.max_member_bytes  # read so far
            return f"inflates to {more}{_size(shown)}; limit {_size(limits.max_member_bytes)}"
        return _ratio_problem(inflated, compressed, limits, more)

    def read(self, name: str) -> bytes:
        """The member's bytes; empty if it is over a limit (then recorded for the report)."""
        info = self.zip.getinfo(name)  # KeyError, as ebooklib expects
        if name in self.over_limit:
            return b""
        if info.flag_bits & 0x1 or info.compress_type not in {
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
        }:
            raise DocumentError(
                f"not a readable EPUB file ({name} is encrypted or compressed with method"
                f" {info.compress_type}; EPUB allows stored and deflated files)"
            )
        data = self.inflate(info)
        if data is not None and len(data) != info.file_size:
            raise DocumentError(
                f"not a readable EPUB file ({name} holds {_size(len(data))}, its directory"
                f" entry says {_size(info.file_size)})"
            )
        return data or b""

    def inflate(self, info: zipfile.ZipInfo) -> bytes | None:
        """Inflate in chunks, counting; ``None`` once a limit is passed.

        zipfile would stop at the declared size (and then report a bad CRC): the member is
        opened as if it declared more than the limit, so that the count, not the directory,
        decides.
        """
        widened = copy.copy(info)
        widened.file_size = self.limits.max_member_bytes + 2 * self.CHUNK_BYTES
        chunks, count = [], 0
        with self.zip.open(widened) as member:
            while chunk := member.read(self.CHUNK_BYTES):
                chunks.append(chunk)
                count += len(chunk)
                self.read_bytes += len(chunk)
                if self.read_bytes > self.limits.max_total_bytes:
                    raise LimitExceeded(
                        f"the EPUB's files inflate to more than"
                        f" {_size(self.limits.max_total_bytes)} in total;"
                        f" limit {_size(self.limits.max_total_bytes)}"
                    )
                if problem := self.problem(count, info.compress_size, "streamed"):
                    self.over_limit[info.filename] = problem
                    return None
        return b"".join(chunks)

    def raise_over_limit(self, labels: dict[str, str]) -> None:
        """The first member over a limit, chapters first, named by ``labels`` where known."""
        if not self.over_limit:
            return
        first = next((name for name in labels if name in self.over_limit), None)
        name = first or next(iter(self.over_limit))
        raise LimitExceeded(f"{labels.get(name, name)} {self.over_limit[name]}")


@functools.cache
def _bounded_reader() -> type:
    from ebooklib import epub

    class BoundedEpubReader(epub.EpubReader):  # type: ignore[misc]
        """ebooklib's reader, whose every member read goes through :class:`_Archive`."""

        def __init__(self, archive: _Archive) -> None:
            # ebooklib opens its own ZipFile on this copy, only to close it again.
            super().__init__(io.BytesIO(archive.content), {"ignore_ncx": True})
            self.archive = archive

        def read_file(self, name: str) -> bytes:
            return self.archive.read(posixpath.normpath(name))

    return BoundedEpubReader


# XHTML ------------------------------------------------------------------------------------

_BLOCKS = frozenset({"p", "li", "h1", "h2", "h3"})
_HEADINGS = frozenset({"h1", "h2", "h3", "title"})
_HIDDEN = frozenset({"script", "style", "template"})  # their text is not the chapter's


def _xhtml_chapter(content: bytes, label: str, limits: DocumentLimits, *, body: bool) -> Chapter:
    """The chapter's heading and text, as BeautifulSoup's ``get_text(" ", strip=True)`` found
    them before: the text of each paragraph, list item and heading, else all of the text.

    With ``body``, only what ebooklib's ``EpubHtml.get_content()`` kept counts: the elements
    of the ``<body>`` (its leading text and the ``<head>`` were dropped)."""
    text = _XhtmlText(label, limits, inside=not body)
    for event, element in _xhtml_events(content):
        text.on(event, element)
    return text.chapter()


def _xhtml_events(content: bytes) -> Iterator[tuple[str, Any]]:
    etree = _etree()
    # UTF-8 unless a byte-order mark says otherwise, as ebooklib read chapters.
    parser = etree.HTMLPullParser(events=("start", "end", "comment", "pi"), encoding="utf-8")
    for start in range(0, len(content), MiB):
        parser.feed(content[start : start + MiB])
        yield from parser.read_events()
    try:
        parser.close()
    except etree.XMLSyntaxError:  # nothing to parse; there was no text before either
        return
    yield from parser.read_events()


def _etree() -> Any:
    from lxml import etree  # type: ignore[import-untyped]

    return etree


class _XhtmlText:
    """Collects a chapter's text from parser events, keeping only the open elements.

    A string is emitted when the event after it arrives (then libxml2 has it whole): the one
    before an element's start (the parent's text or the previous sibling's tail) and the one
    before its end (its own text or its last child's tail). Ended elements are emptied and
    dropped, so memory follows the text, not the markup.
    """

    def __init__(self, label: str, limits: DocumentLimits, *, inside: bool) -> None:
        self.label, self.limits = label, limits
        self.everywhere = inside  # else only inside <body>
        self.inside = inside
        self.depth = 0
        self.hidden = 0
        self.title: list[str] | None = None  # the first heading's (or <title>'s) text
        self.title_element: Any = None  # while it is open
        self.blocks: list[str] = []
        self.open_blocks: list[tuple[int, list[str]]] = []
        self.block_characters = 0
        self.document: list[str] | None = []  # kept until a block has text
        self.document_characters = 0

    def on(self, event: str, element: Any) -> None:
        if event == "end":
            if len(element):
                self.emit(element[-1].tail)
            elif not self.is_body(element):
                self.emit(element.text)
            self.close(element)
            return
        parent = element.getparent()
        if parent is not None:
            previous = element.getprevious()
            if previous is not None:
                self.emit(previous.tail)
            elif not self.is_body(parent):
                self.emit(parent.text)
        if event == "start":
            self.open(element)

    def is_body(self, element: Any) -> bool:
        return not self.everywhere and element.tag == "body"

    def open(self, element: Any) -> None:
        self.depth += 1
        if self.depth > self.limits.max_xhtml_depth:
            raise LimitExceeded(
                f"{self.label} nests its markup more than {self.limits.max_xhtml_depth}"
                f" levels deep; limit {self.limits.max_xhtml_depth}"
            )
        tag = element.tag
        self.inside = self.inside or self.is_body(element)
        self.hidden += tag in _HIDDEN
        if not self.inside:
            return
        if tag in _HEADINGS and self.title is None:
            self.title, self.title_element = [], element
        if tag in _BLOCKS:
            self.open_blocks.append((len(self.blocks), []))
            self.blocks.append("")

    def close(self, element: Any) -> None:
        self.depth -= 1
        tag = element.tag
        self.hidden -= tag in _HIDDEN
        if element is self.title_element:
            self.title_element = None
        if tag in _BLOCKS and self.inside:
            slot, pieces = self.open_blocks.pop()
            self.blocks[slot] = " ".join(pieces)
        self.inside = self.inside and not self.is_body(element)
        element.clear(keep_tail=True)  # its tail is emitted with the next event
        parent = element.getparent()
        while parent is not None and element.getprevious() is not None:
            del parent[0]

    def emit(self, text: str | None) -> None:
        if not text or not self.inside or self.hidden or not (text := text.strip()):
            return
        self.document_characters += len(text)
        self.block_characters += len(text) * len(self.open_blocks)
        limit = self.limits.max_chapter_characters
        if max(self.document_characters, self.block_characters) > limit:
            raise LimitExceeded(
                f"{self.label} has more than {limit:,} characters of text; limit {limit:,}"
            )
        if self.title is not None and self.title_element is not None:
            self.title.append(text)
        for _, pieces in self.open_blocks:
            pieces.append(text)
        if self.open_blocks:
            self.document = None
        elif self.document is not None:
            self.document.append(text)

    def chapter(self) -> Chapter:
        title = None if self.title is None else " ".join(self.title)
        text = "\n\n".join(self.blocks)
        return Chapter(title, text or " ".join(self.document or []))


# PDF --------------------------------------------------------------------------------------


def parse_pdf(content: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> list[Chapter]:
    import pypdf
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        with pypdf.apply_configuration(_pdf_configuration(limits)):
            reader = pypdf.PdfReader(io.BytesIO(content))
            _check_page_count(reader, limits)
            pages = _PdfPages(limits)
            texts = [pages.text(page, n) for n, page in enumerate(reader.pages, start=1)]
    except LimitReachedError as exc:
        raise LimitExceeded(f"the PDF is over a limit on reading it ({exc})") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"not a readable PDF file ({exc})") from exc
    return [Chapter(f"Page {n}", text) for n, text in enumerate(texts, start=1)]


def _pdf_configuration(limits: DocumentLimits) -> pypdf.Configuration:
    """pypdf's decoding limits (its defaults allow 75 MB a stream), set from ours."""
    import pypdf

    stream = limits.max_member_bytes
    return pypdf.get_configuration().with_overwrites(
        maximum_declared_stream_length=stream,
        array_based_stream_maximum_output_length=stream,
        zlib_maximum_output_length=stream,
        lzw_maximum_output_length=stream,
        run_length_maximum_output_length=stream,
        jbig2_maximum_output_length=stream,
        brotli_maximum_output_length=stream,
        image_maximum_buffer_size=stream,
    )


def _check_page_count(reader: Any, limits: DocumentLimits) -> None:
    """The page tree's declared count first (no pages are built), then the pages found."""
    declared = reader.root_object["/Pages"].get_object().get("/Count")
    declared = declared.get_object() if declared is not None else 0
    for count in (declared, len(reader.pages)):
        if isinstance(count, int) and count > limits.max_pdf_pages:
            raise LimitExceeded(f"the PDF has {count:,} pages; limit {limits.max_pdf_pages:,}")


@dataclass
class _PdfPages:
    """Page text within limits. pypdf keeps each decoded content stream with its object; here
    a page's streams are decoded first (counted towards ``max_total_bytes``), and let go once
    its text is out, so memory holds one page's content at a time."""

    limits: DocumentLimits
    decoded_bytes: int = 0

    def text(self, page: Any, number: int) -> str:
        from pypdf.errors import LimitReachedError

        streams = self.content_streams(page)
        try:
            for stream in streams:
                self.decoded_bytes += self.decode(stream, number)
            if self.decoded_bytes > self.limits.max_total_bytes:
                total = _size(self.limits.max_total_bytes)
                raise LimitExceeded(
                    f"the PDF's pages up to page {number} decode to more than {total} of"
                    f" content; limit {total}"
                )
            text: str = page.extract_text() or ""
        except LimitReachedError as exc:
            stream = _size(self.limits.max_member_bytes)
            raise LimitExceeded(
                f"page {number} holds a stream that decodes to more than {stream};"
                f" limit {stream} ({exc})"
            ) from exc
        finally:
            for stream in streams:
                if hasattr(stream, "decoded_self"):
                    stream.decoded_self = None
        if len(text) > self.limits.max_chapter_characters:
            raise LimitExceeded(
                f"page {number} has {len(text):,} characters of text;"
                f" limit {self.limits.max_chapter_characters:,}"
            )
        return text

    def decode(self, stream: Any, number: int) -> int:
        """The stream's decoded size; pypdf decodes it at once, within ``max_member_bytes``."""
        decoded = len(stream.get_data())
        encoded = len(getattr(stream, "_data", b""))  # pypdf drops /Length once it has read it
        if problem := _ratio_problem(decoded, encoded, self.limits, ""):
            raise LimitExceeded(f"page {number}'s content {problem}")
        return decoded

    @staticmethod
    def content_streams(page: Any) -> list[Any]:
        from pypdf.generic import ArrayObject, StreamObject

        contents = page.get("/Contents")
        contents = contents.get_object() if contents is not None else None
        parts = contents if isinstance(contents, ArrayObject) else [contents]
        return [
            s
            for s in (p.get_object() for p in parts if p is not None)
            if isinstance(s, StreamObject)
        ]


# Text and Markdown ------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def parse_text(content: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> list[Chapter]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError("not a UTF-8 text file") from exc
    if "\x00" in text:
        raise DocumentError("not a text file (it contains binary data)")
    chapters = _sections(text)
    if len(text) > limits.max_chapter_characters:
        for number, chapter in enumerate(chapters, start=1):
            _check_section(chapter, number, limits)
    return chapters


def _sections(text: str) -> list[Chapter]:
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


def _check_section(chapter: Chapter, number: int, limits: DocumentLimits) -> None:
    if len(chapter.text) > limits.max_chapter_characters:
        title = f" ({chapter.title})" if chapter.title else ""
        raise LimitExceeded(
            f"chapter {number}{title} has {len(chapter.text):,} characters of text;"
            f" limit {limits.max_chapter_characters:,}"
        )


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
