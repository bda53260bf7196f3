"""Uploading a document: validate, store it in the Storage bucket, enqueue ``process_document``.

Either both happen or neither: if enqueueing fails, the stored file is removed again. A
document goes into its owner's folder (``<user id>/…``) of the ``documents`` bucket, the one
folder a ``process_document`` job of that user may name; a client acting with the service key
(no user) uses ``service/…``, a folder no user can name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

import jwt
from storage3.exceptions import StorageApiError

from jobdock.actions import enqueue
from jobdock.backend import backend
from jobdock.errors import BackendError, InvalidUpload, JobdockError
from jobdock.formats import CONTENT_TYPES
from jobdock.models import Job
from jobdock.settings import Settings, get_settings
from supabase import Client

PROCESS_DOCUMENT = "process_document"
#: The folder of documents uploaded without a user (service key); no user can name it.
SERVICE_FOLDER = "service"


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def validate(upload: Upload, limit_bytes: int) -> str:
    """The content type for an acceptable upload; ``InvalidUpload`` otherwise."""
    name = PurePosixPath(upload.filename.replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in CONTENT_TYPES:
        accepted = ", ".join(sorted(CONTENT_TYPES))
        raise InvalidUpload(f"{name or 'this file'}: unsupported type; upload one of {accepted}")
    if not upload.data:
        raise InvalidUpload(f"{name}: the file is empty")
    if len(upload.data) > limit_bytes:
        raise InvalidUpload(
            f"{name}: {len(upload.data) / 1e6:.1f} MB is over the {limit_bytes / 1e6:.0f} MB limit"
        )
    return CONTENT_TYPES[suffix]


def acting_user(settings: Settings) -> str | None:
    """The user a client configured with ``SUPABASE_ACCESS_TOKEN`` acts as (the token's
    ``sub``; Supabase verifies the token, this only reads it), or None for the service key."""
    token = settings.supabase_access_token
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidUpload(f"SUPABASE_ACCESS_TOKEN is not a JWT ({exc})") from exc
    subject = claims.get("sub")
    return str(subject) if isinstance(subject, str) and subject else None


def upload_document(
    client: Client, upload: Upload, *, owner: str | None = None, settings: Settings | None = None
) -> Job:
    settings = settings or get_settings()
    content_type = validate(upload, settings.upload_limit_bytes)
    filename = PurePosixPath(upload.filename.replace("\\", "/")).name
    folder = owner or acting_user(settings) or SERVICE_FOLDER
    path = f"{folder}/{uuid.uuid4()}/{filename}"
    bucket = client.storage.from_(settings.documents_bucket)
    try:
        with backend("upload"):
            bucket.upload(path, upload.data, {"content-type": content_type})
    except StorageApiError as exc:
        raise BackendError(f"upload failed: {exc.message}", str(exc.code)) from exc
    try:
        return enqueue(
            client,
            PROCESS_DOCUMENT,
            {"bucket": settings.documents_bucket, "path": path, "filename": filename},
        )
    except JobdockError:
        bucket.remove([path])
        raise
