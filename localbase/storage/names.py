"""Which bucket names and object keys Storage accepts.

The character sets are Supabase Storage's (``src/storage/limits.ts``): S3-safe ASCII only, so
control characters, backslashes, ``%``, ``#`` and non-ASCII letters are refused. On top of that a
key may not start with ``/`` or contain a ``.``/``..`` segment (storage3 refuses those too), so a
key always names something below its bucket.
"""

from __future__ import annotations

import re

from localbase.storage.errors import invalid_bucket_name, invalid_key

MAX_KEY_LENGTH = 1024
MAX_BUCKET_NAME_LENGTH = 100

_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$@=;:+,?-]+")
_BUCKET = re.compile(r"[A-Za-z0-9_!.*'() &$@=;:+,?-]+")


def is_valid_key(key: str) -> bool:
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        return False
    if key.startswith("/"):
        return False
    return not any(segment in {".", ".."} for segment in key.split("/"))


def is_valid_bucket_name(name: str) -> bool:
    if not name or len(name) > MAX_BUCKET_NAME_LENGTH or name.strip() != name:
        return False
    return name not in {".", ".."} and _BUCKET.fullmatch(name) is not None


def check_key(key: str) -> str:
    """``key`` itself, or the InvalidKey error."""
    if not is_valid_key(key):
        raise invalid_key(key)
    return key


def check_bucket_name(name: str) -> str:
    """``name`` itself, or the InvalidBucketName error."""
    if not is_valid_bucket_name(name):
        raise invalid_bucket_name()
    return name
