"""Documents within limits: each limit fails with its message, hostile documents (zip and flate
bombs, lying sizes, deep nesting) are refused in bounded memory, normal ones parse as before."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.documents import (
    MiB,
    _EpubWriter,
    make_crowded_epub,
    make_epub,
    make_large_epub,
    make_large_markdown,
    make_markdown,
    make_nested_epub,
    make_pdf,
    make_pdf_bomb,
    make_spacious_epub,
)
from worker.parsing import (
    DEFAULT_LIMITS,
    Chapter,
    DocumentError,
    DocumentLimits,
    LimitExceeded,
    parse,
)

# Ratio checks off, to reach the size limits with documents that compress well.
ANY_RATIO = DocumentLimits(max_compression_ratio=1e9)


def refusal(name: str, content: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(LimitExceeded) as info:
        parse(name, content, limits)
    return str(info.value)


# Each limit, with its message -------------------------------------------------------------


def test_a_member_declared_over_the_limit_is_refused_before_inflating() -> None:
    assert refusal("b.epub", make_spacious_epub([2000, 100 * MiB])) == (
        "chapter 2 (OEBPS/chapter_2.xhtml) inflates to 100 MiB; limit 64 MiB"
    )


def test_a_compression_ratio_over_the_limit_is_refused() -> None:
    message = refusal("b.epub", make_spacious_epub([2000, 10 * MiB]))
    assert re.fullmatch(
        r"chapter 2 \(OEBPS/chapter_2\.xhtml\) is compressed [\d,]+ to 1"
        r" \([\d.]+ KiB to 10 MiB\); limit 100 to 1",
        message,
    ), message


def test_small_members_may_compress_any_way() -> None:
    chapters = parse("b.epub", make_spacious_epub([2000, 900 * 1024]))
    assert [c.text for c in chapters] == ["Words.", "Words."]


def test_too_many_members_are_refused() -> None:
    assert (
        refusal("b.epub", make_crowded_epub(10_001)) == "the EPUB lists 10,001 files; limit 10,000"
    )
    limits = DocumentLimits(max_archive_members=20)
    assert refusal("b.epub", make_crowded_epub(21), limits) == "the EPUB lists 21 files; limit 20"
    assert parse("b.epub", make_crowded_epub(20), limits) == [Chapter(None, "Words.")]


def test_a_declared_total_over_the_limit_is_refused() -> None:
    limits = DocumentLimits(max_total_bytes=8 * MiB, max_compression_ratio=1e9)
    assert refusal("b.epub", make_spacious_epub([3 * MiB] * 3), limits) == (
        "the EPUB's files inflate to 9 MiB in total; limit 8 MiB"
    )


def test_a_total_under_lying_sizes_is_caught_while_inflating() -> None:
    limits = DocumentLimits(max_total_bytes=8 * MiB, max_compression_ratio=1e9)
    lying = make_spacious_epub([2000, 20 * MiB], declared_bytes={2: 1000})
    assert refusal("b.epub", lying, limits) == (
        "the EPUB's files inflate to more than 8 MiB in total; limit 8 MiB"
    )


def test_a_member_whose_size_lies_is_measured_while_inflating() -> None:
    lying = make_spacious_epub([2000, 100 * MiB], declared_bytes={2: 1000})
    assert refusal("b.epub", lying, ANY_RATIO) == (
        "chapter 2 (OEBPS/chapter_2.xhtml) inflates to more than 64 MiB; limit 64 MiB"
    )
    message = refusal("b.epub", lying)
    assert message.startswith("chapter 2 (OEBPS/chapter_2.xhtml) is compressed more than"), message


def test_a_member_whose_size_lies_within_the_limits_is_unreadable() -> None:
    lying = make_spacious_epub([2000, 5000], declared_bytes={2: 1000})
    with pytest.raises(DocumentError, match="not a readable EPUB file") as info:
        parse("b.epub", lying)
    assert "OEBPS/chapter_2.xhtml holds 4.9 KiB, its directory entry says 1,000 bytes" in str(
        info.value
    )


def test_text_over_the_chapter_limit_is_refused() -> None:
    limits = DocumentLimits(max_chapter_characters=500)
    epub = make_epub([("Short", "x"), ("Long", "word " * 200)])
    assert refusal("b.epub", epub, limits) == (
        "chapter 2 (EPUB/chap_2.xhtml) has more than 500 characters of text; limit 500"
    )
    markdown = make_markdown([("Short", "x"), ("Long", "word " * 200)])
    assert refusal("b.md", markdown, limits) == (
        "chapter 2 (Long) has 1,001 characters of text; limit 500"
    )
    assert refusal("b.pdf", make_pdf(["x", "y" * 600]), limits) == (
        "page 2 has 600 characters of text; limit 500"
    )


def test_deep_nesting_is_refused_quickly() -> None:
    assert refusal("b.epub", make_nested_epub(300)) == (
        "chapter 1 (OEBPS/chapter_1.xhtml) nests its markup more than 256 levels deep; limit 256"
    )
    assert "nests its markup" in refusal("b.epub", make_nested_epub(100_000), ANY_RATIO)
    # With the default limits, 100,000 <div>s (1.1 MiB from 2 KB) compress too well already.
    assert "is compressed" in refusal("b.epub", make_nested_epub(100_000))
    assert parse("b.epub", make_nested_epub(200))[0].text == "Shallow."


def test_too_many_pdf_pages_are_refused() -> None:
    assert refusal("b.pdf", make_pdf(["x"] * 2001)) == "the PDF has 2,001 pages; limit 2,000"
    assert refusal("b.pdf", make_pdf(["x"] * 3), DocumentLimits(max_pdf_pages=2)) == (
        "the PDF has 3 pages; limit 2"
    )


def test_a_pdf_flate_bomb_is_refused() -> None:
    assert refusal("b.pdf", make_pdf_bomb(100 * MiB)).startswith(
        "page 1 holds a stream that decodes to more than 64 MiB; limit 64 MiB"
    )
    message = refusal("b.pdf", make_pdf_bomb(10 * MiB))
    assert re.fullmatch(
        r"page 1's content is compressed [\d,]+ to 1 \(.*\); limit 100 to 1", message
    )


def test_pdf_content_over_the_total_is_refused() -> None:
    limits = DocumentLimits(max_total_bytes=8 * MiB, max_compression_ratio=1e9)
    assert refusal("b.pdf", make_pdf_bomb(3 * MiB, pages=4), limits) == (
        "the PDF's pages up to page 3 decode to more than 8 MiB of content; limit 8 MiB"
    )


def test_limits_past_libxml2s_depth_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_xhtml_depth"):
        DocumentLimits(max_xhtml_depth=1000)


# Hostile documents in bounded memory ------------------------------------------------------

# The peak resident memory of the process (VmHWM; ru_maxrss would include pytest's, as Linux
# keeps it across exec).
PARSE_AND_MEASURE = """
import json, re, sys
from pathlib import Path
from worker.parsing import DocumentError, DocumentLimits, parse

path, limits = sys.argv[1], DocumentLimits(**json.loads(sys.argv[2]))
try:
    parse(path, Path(path).read_bytes(), limits)
    outcome = "parsed"
except DocumentError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())
print(json.dumps([outcome, int(peak[1]) * 1024]))
"""


@pytest.mark.parametrize(
    ("name", "make", "limits", "refused"),
    [
        ("declared.epub", lambda: make_spacious_epub([2000, 100 * MiB]), {}, "inflates to"),
        (
            # Told 1,000 bytes, a reader trusting the directory would inflate all 400 MiB.
            "lying.epub",
            lambda: make_spacious_epub([2000, 400 * MiB], declared_bytes={2: 1000}),
            {"max_compression_ratio": 1e9},
            "inflates to more than 64 MiB",
        ),
        ("nested.epub", lambda: make_nested_epub(100_000), {"max_compression_ratio": 1e9}, "nests"),
        ("bomb.pdf", lambda: make_pdf_bomb(400 * MiB), {}, "decodes to more than 64 MiB"),
    ],
)
def test_hostile_documents_are_refused_in_bounded_memory(
    tmp_path: Path, name: str, make: object, limits: dict[str, float], refused: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make())  # type: ignore[operator]
    run = subprocess.run(
        [sys.executable, "-c", PARSE_AND_MEASURE, str(path), json.dumps(limits)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome, peak_bytes = json.loads(run.stdout)
    assert outcome.startswith("LimitExceeded"), outcome
    assert refused in outcome, outcome
    assert peak_bytes < 200 * MiB, f"{name}: peak {peak_bytes / MiB:.0f} MiB"


# Normal documents, as before --------------------------------------------------------------


def test_epub_chapters_keep_their_titles_and_text() -> None:
    book = _EpubWriter()
    book.chapter(
        b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b"<head><title>Ignored</title><style>p{}</style></head><body>Lead text"
        b"<h2>One <em>two</em></h2><p>It was&#160;a <b>bright</b>\n cold day.</p><!-- note -->"
        b"<ul><li>First<p>inner</p></li><li></li></ul><script>var x</script>"
        b"<p>Caf\xc3\xa9 &amp; co</p></body></html>"
    ).close()
    book.chapter(b"<html><body><div>No blocks <span>at</span> all</div> tail</body></html>").close()
    assert parse("b.epub", book.close()) == [
        Chapter(
            "One two",
            "One two\n\nIt was\xa0a bright cold day.\n\nFirst inner\n\ninner\n\n\n\nCafé & co",
        ),
        Chapter(None, "No blocks at all tail"),
    ]


def test_generated_documents_parse_as_before() -> None:
    chapters = [("Opening", "It was.\n\nThe clocks."), ("Ending", "That was that.")]
    assert parse("b.epub", make_epub(chapters)) == [
        Chapter("Opening", "Opening\n\nIt was.\n\nThe clocks."),
        Chapter("Ending", "Ending\n\nThat was that."),
    ]
    assert parse("b.md", make_markdown(chapters)) == [
        Chapter("Opening", "\nIt was.\n\nThe clocks.\n\n"),
        Chapter("Ending", "\nThat was that."),
    ]
    assert parse("b.pdf", make_pdf(["one", "two"])) == [
        Chapter("Page 1", "one"),
        Chapter("Page 2", "two"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("broken.epub", b"PK\x03\x04 this is not a zip", "not a readable EPUB file"),
        ("broken.pdf", b"%PDF-1.4 nothing else", "not a readable PDF file"),
        ("binary.txt", b"\xff\xfe\x00\x01", "not a UTF-8 text file"),
        ("empty.md", b"   \n\n  ", "no text found"),
        ("empty.epub", make_epub([("", "")]), "no text found"),
    ],
)
def test_malformed_documents_keep_their_messages(name: str, content: bytes, error: str) -> None:
    with pytest.raises(DocumentError, match=error) as info:
        parse(name, content)
    assert not isinstance(info.value, LimitExceeded)


def test_a_20_mb_markdown_document_parses() -> None:
    chapters = parse("big.md", make_large_markdown(20_000_000))
    assert len(chapters) > 90
    assert sum(len(c.text) for c in chapters) > 19_000_000


def test_a_large_epub_parses() -> None:
    chapters = parse("big.epub", make_large_epub(2_000_000))
    assert len(chapters) > 3
    assert chapters[0].title == "Chapter 1"
    assert all(len(c.text) > 900_000 for c in chapters)
