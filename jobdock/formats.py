"""The document types jobdock accepts, in one table: suffix → content type.

The upload check (``jobdock.documents``), the dock's uploader and the worker's parser
(``worker.parsing``) all read it; a type is accepted in one place or nowhere. No imports
beyond the standard library: the worker's parser process loads it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".epub": "application/epub+zip",
        ".pdf": "application/pdf",
        ".txt": "text/plain",
        ".md": "text/markdown",
    }
)
