"""Small EPUB, PDF and text documents generated for tests (nothing binary is checked in)."""

from __future__ import annotations

import functools
import io
import random
import string
import struct
import warnings
import zipfile
import zlib
from typing import IO


def make_epub(chapters: list[tuple[str, str]], title: str = "Test Book") -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("jobdock-test")
    book.set_title(title)
    book.set_language("en")
    items = []
    for n, (heading, text) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"chap_{n}.xhtml", lang="en")
        paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        item.content = f"<html><body><h1>{heading}</h1>{paragraphs}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.spine = ["nav", *items]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epub.write_epub(out, book)
    return out.getvalue()


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    escaped = (t.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for t in pages)
    return _pdf_document([(b"", f"BT /F1 12 Tf 72 720 Td ({t}) Tj ET".encode()) for t in escaped])


def make_markdown(chapters: list[tuple[str, str]]) -> bytes:
    return "\n\n".join(f"# {h}\n\n{t}" for h, t in chapters).encode()


# Hostile and large documents ------------------------------------------------------------------
# Written in bounded memory: members and streams are written in chunks of CHUNK bytes.

MiB = 1024 * 1024
CHUNK = MiB


def _chapter_xhtml(title: str, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        f"<head><title>{title}</title></head><body>{body}</body></html>"
    ).encode()


class _EpubWriter:
    """An EPUB without navigation document; each chapter is a spine item, in the order added."""

    def __init__(self, compresslevel: int | None = None) -> None:
        self.out = io.BytesIO()
        self.zip = zipfile.ZipFile(self.out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self.zip.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        self.zip.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0"'
            ' xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        self.chapters: list[str] = []

    def chapter(self, content: bytes = b"") -> IO[bytes]:
        """Adds the next chapter, ``OEBPS/chapter_<n>.xhtml``; write to it, then close it."""
        self.chapters.append(f"chapter_{len(self.chapters) + 1}.xhtml")
        member = self.zip.open(f"OEBPS/{self.chapters[-1]}", "w")
        member.write(content)
        return member

    def close(self) -> bytes:
        manifest = "".join(
            f'<item id="c{n}" href="{name}" media-type="application/xhtml+xml"/>'
            for n, name in enumerate(self.chapters, start=1)
        )
        spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, len(self.chapters) + 1))
        self.zip.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"'
            ' unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:identifier id="id">jobdock-test</dc:identifier><dc:title>Generated</dc:title>'
            f"<dc:language>en</dc:language></metadata><manifest>{manifest}</manifest>"
            f"<spine>{spine}</spine></package>",
        )
        self.zip.close()
        return self.out.getvalue()


def make_spacious_epub(
    chapter_bytes: list[int], *, declared_bytes: dict[int, int] | None = None
) -> bytes:
    """An EPUB whose chapter ``n`` (from 1) inflates to ``chapter_bytes[n - 1]``: a short
    paragraph, then spaces, which deflate some 1,000 to 1 (100 MiB into about 100 KB).
    ``declared_bytes`` makes chapter ``n``'s zip headers lie about its size."""
    book = _EpubWriter(compresslevel=9)
    for n, size in enumerate(chapter_bytes, start=1):
        head, tail = _chapter_xhtml(f"Chapter {n}", "<p>Words.</p>").split(b"</p>")
        with book.chapter(head) as member:
            for left in range(size - len(head) - len(tail) - 4, 0, -CHUNK):
                member.write(b" " * min(left, CHUNK))
            member.write(b"</p>" + tail)
    archive = book.close()
    for n, size in (declared_bytes or {}).items():
        archive = _declare_size(archive, f"OEBPS/chapter_{n}.xhtml", size)
    return archive


def _declare_size(archive: bytes, name: str, size: int) -> bytes:
    """``archive`` with ``name``'s uncompressed size set to ``size`` in both of its headers."""
    patched = bytearray(archive)
    local = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name).header_offset
    struct.pack_into("<I", patched, local + 22, size)  # the local file header
    entry = archive.index(b"PK\x01\x02", local + 30)  # its central directory entry points back
    while struct.unpack_from("<I", archive, entry + 42)[0] != local:
        entry = archive.index(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", patched, entry + 24, size)
    return bytes(patched)


def make_crowded_epub(files: int) -> bytes:
    """A readable one-chapter EPUB of ``files`` members in all (the others empty)."""
    book = _EpubWriter()
    book.chapter(_chapter_xhtml("One", "<p>Words.</p>")).close()
    for n in range(files - 4):
        book.zip.writestr(f"OEBPS/extra/{n}", b"")
    return book.close()


def make_nested_epub(depth: int = 100_000) -> bytes:
    """A chapter of ``depth`` nested ``<div>``s around one word (600 KB in a 2 KB EPUB)."""
    book = _EpubWriter()
    body = "<p>Shallow.</p>" + "<div>" * depth + "deep" + "</div>" * depth
    book.chapter(_chapter_xhtml("Deep", body)).close()
    return book.close()


def _pdf_document(pages: list[tuple[bytes, bytes]]) -> bytes:
    """A PDF of pages given as (extra entries of the stream's dictionary, content stream)."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    for page_id, (entries, stream) in zip(page_ids, pages, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, page_id + 1)
        )
        stream_dict = b"<< /Length %d %s>>" % (len(stream), entries + b" " if entries else b"")
        objects.append(stream_dict + b"\nstream\n" + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def make_pdf_bomb(inflated_bytes: int = 100 * MiB, pages: int = 1) -> bytes:
    """A PDF whose pages share a content stream of a line of text and then spaces, to
    ``inflated_bytes``, flate-compressed (100 MiB into about 100 KB)."""
    compressor = zlib.compressobj(9)
    text = b"BT /F1 12 Tf 72 720 Td (Words.) Tj ET\n"
    parts = [compressor.compress(text)]
    for left in range(inflated_bytes - len(text), 0, -CHUNK):
        parts.append(compressor.compress(b" " * min(left, CHUNK)))
    stream = b"".join(parts) + compressor.flush()
    return _pdf_document([(b"/Filter /FlateDecode", stream)] * pages)


@functools.cache
def _prose_pool() -> str:
    """About 1 MiB of made-up prose in paragraphs. Generators cut it at other offsets: deflate
    looks back 32 KB only, so repeats a MiB apart still compress like prose (about 2.5 to 1)."""
    rng = random.Random(10)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    sentences = [
        " ".join(rng.choices(words, k=rng.randint(6, 18))).capitalize() + "." for _ in range(12_000)
    ]
    return "\n\n".join(" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6))


def _prose(chars: int, offset: int) -> str:
    """About ``chars`` characters of whole paragraphs, from ``offset`` in the pool."""
    pool = _prose_pool()
    start = pool.find("\n\n", offset % (len(pool) - chars if len(pool) > chars else 1)) + 2
    text = pool[start : start + chars]
    while len(text) < chars:
        text += "\n\n" + pool[: chars - len(text)]
    return text.rsplit("\n\n", 1)[0] if "\n\n" in text else text


def make_large_markdown(target_bytes: int, chapter_chars: int = 200_000) -> bytes:
    """A Markdown document of about ``target_bytes``: chapters of prose under ``#`` headings."""
    parts: list[str] = []
    size = 0
    while size < target_bytes:
        part = f"# Chapter {len(parts) + 1}\n\n{_prose(chapter_chars, size)}\n\n"
        parts.append(part)
        size += len(part)
    return "".join(parts).encode()


def make_large_epub(target_bytes: int, chapter_chars: int = 1_000_000) -> bytes:
    """An EPUB file of about ``target_bytes``: chapters of prose paragraphs."""
    book = _EpubWriter(compresslevel=1)
    while book.out.tell() < target_bytes:
        n = len(book.chapters) + 1
        paragraphs = _prose(chapter_chars, n * 7919).split("\n\n")
        body = f"<h1>Chapter {n}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        book.chapter(_chapter_xhtml(f"Chapter {n}", body)).close()
    return book.close()


def make_large_pdf(target_bytes: int, max_pages: int = 1500) -> bytes:
    """A PDF of about ``target_bytes`` of uncompressed page text, in at most ``max_pages``."""
    pages = max(1, min(max_pages, target_bytes // 4000))
    contents = []
    for n in range(pages):
        text = _prose(target_bytes // pages, n * 7919).replace("\n\n", " ")
        rows = [text[i : i + 120] for i in range(0, len(text), 120)]
        stream = "BT /F1 6 Tf 8 TL 20 780 Td\n" + "\n".join(f"({r}) Tj T*" for r in rows) + "\nET"
        contents.append((b"", stream.encode()))
    return _pdf_document(contents)
