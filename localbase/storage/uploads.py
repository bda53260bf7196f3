"""Reading an upload from the request body into a staged file, with Storage's limits.

storage3 sends ``multipart/form-data`` (fields ``cacheControl``, optional ``contentType`` and
``metadata``, then the ``file`` part); any other content type is taken as the raw file bytes,
as Storage does. The body is parsed as it streams in and only the file part reaches the disk,
so memory stays bounded. The size limit is checked as bytes arrive: the first byte over it
stops the upload with EntityTooLarge, and the staged file is dropped by the caller.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from localbase import strict_json
from localbase.storage.errors import entity_too_large, invalid_mime_type, invalid_request
from localbase.storage.files import StagedFile

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # Storage's default upload limit
MAX_FIELD_BYTES = 1024 * 1024  # Storage's limit on the metadata field
MAX_FIELDS = 10
DRAIN_BYTES = 2 * MAX_UPLOAD_BYTES
DEFAULT_MIMETYPE = "application/octet-stream"
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class UploadRules:
    """What the bucket allows: a size limit in bytes and, optionally, mimetypes."""

    max_bytes: int
    allowed_mime_types: tuple[str, ...] | None

    def check_mimetype(self, mimetype: str) -> None:
        """Storage's rule: ``type/subtype`` or ``type/*``, comparing the whole subtype."""
        if not self.allowed_mime_types:
            return
        requested = mimetype.split("/")
        if len(requested) < 2:
            raise invalid_mime_type(mimetype)
        for allowed in self.allowed_mime_types:
            kind, _, subtype = allowed.partition("/")
            if kind == requested[0] and subtype in {"*", requested[1]}:
                return
        raise invalid_mime_type(mimetype)


@dataclass(frozen=True)
class Upload:
    """A received file: where it is staged and what the request said about it."""

    file: StagedFile
    mimetype: str
    cache_control: str
    user_metadata: Any


class Body:
    """The request body as chunks, read at most once, remembering whether it ended."""

    def __init__(self, request: Request) -> None:
        self._chunks: AsyncIterator[bytes] = request.stream()
        self.finished = False

    async def next(self) -> bytes | None:
        """The next non-empty chunk, or None at the end."""
        while not self.finished:
            chunk = await anext(self._chunks, None)
            if chunk is None:
                self.finished = True
            elif chunk:
                return chunk
        return None

    async def drain(self, limit: int = DRAIN_BYTES) -> bool:
        """Read and drop the rest of the body (up to ``limit`` bytes); True if it ended."""
        dropped = 0
        while dropped <= limit and (chunk := await self.next()) is not None:
            dropped += len(chunk)
        return self.finished


def _header_safe(value: str, what: str) -> str:
    if not _HEADER_SAFE.fullmatch(value):
        raise invalid_request(f"Invalid {what}: only printable ASCII is allowed")
    return value


async def receive(request: Request, body: Body, staged: StagedFile, rules: UploadRules) -> Upload:
    """Stream the request's file into ``staged``; raise a StorageError on bad input."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise invalid_request("Malformed multipart body: the boundary is missing")
        return await _receive_form(body, boundary, staged, rules)
    mimetype = _header_safe(content_type or DEFAULT_MIMETYPE, "content type")
    cache_control = _header_safe(
        request.headers.get("cache-control") or "no-cache", "cache control"
    )
    rules.check_mimetype(mimetype)
    while (chunk := await body.next()) is not None:
        await _store(staged, chunk, rules)
    return Upload(staged, mimetype, cache_control, None)


async def _store(staged: StagedFile, data: bytes, rules: UploadRules) -> None:
    if staged.size + len(data) > rules.max_bytes:
        raise entity_too_large()
    await staged.write(data)


async def _receive_form(
    body: Body, boundary: bytes, staged: StagedFile, rules: UploadRules
) -> Upload:
    form = _Form()
    try:
        parser = MultipartParser(boundary, form.callbacks())
    except FormParserError as exc:
        raise invalid_request(f"Malformed multipart body: {exc}") from exc
    checked = False
    while (chunk := await body.next()) is not None:
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise invalid_request(f"Malformed multipart body: {exc}") from exc
        form.raise_for_problems()
        if form.mimetype is not None and not checked:
            rules.check_mimetype(_header_safe(form.mimetype, "content type"))
            checked = True
        if form.pending:
            data, form.pending = b"".join(form.pending), []
            await _store(staged, data, rules)
    if not form.ended:
        raise invalid_request("Malformed multipart body: the closing boundary is missing")
    if form.mimetype is None:
        raise invalid_request("No content provided: the form has no file part")
    return Upload(staged, form.mimetype, form.cache_control(), form.user_metadata())


class _Form:
    """python-multipart callbacks: keeps text fields, queues the file part's bytes."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.mimetype: str | None = None  # set once the file part's headers are read
        self.pending: list[bytes] = []
        self.ended = False
        self._problem: str | None = None
        self._headers: dict[str, str] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._field: str | None = None
        self._value = bytearray()
        self._in_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def raise_for_problems(self) -> None:
        if self._problem == "field":
            raise entity_too_large("user_metadata")
        if self._problem is not None:
            raise invalid_request(self._problem)

    def cache_control(self) -> str:
        value = self.fields.get("cacheControl")
        return _header_safe(f"max-age={value}", "cacheControl") if value else "no-cache"

    def user_metadata(self) -> Any:
        raw = self.fields.get("metadata") or self.fields.get("userMetadata")
        if raw is None:
            return None
        try:
            return strict_json.loads(raw)
        except strict_json.JsonInputError:
            return None  # Storage ignores metadata that is not JSON

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = None
        self._value = bytearray()
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("latin-1").strip()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("latin-1")
        if b"filename" in params or name == "file":
            if self.mimetype is None:
                part_type = self._headers.get("content-type") or DEFAULT_MIMETYPE
                self.mimetype = self.fields.get("contentType") or part_type
                self._in_file = True
        elif len(self.fields) >= MAX_FIELDS:
            self._problem = f"Malformed multipart body: more than {MAX_FIELDS} fields"
        else:
            self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(data[start:end])
        elif self._field is not None:
            if len(self._value) + end - start > MAX_FIELD_BYTES:
                self._problem = "field"
            else:
                self._value += data[start:end]

    def _part_end(self) -> None:
        if self._field is not None:
            self.fields[self._field] = self._value.decode("utf-8", "replace")
        self._in_file = False
        self._field = None

    def _end(self) -> None:
        self.ended = True
