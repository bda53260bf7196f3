"""Errors jobdock raises on purpose. Library errors are translated once, at the boundary.

JobdockError
├── InvalidJobId          not a UUID (a usage error: nothing was sent)
├── InvalidSettings       a setting (``SUPABASE_URL``…) is malformed (nothing was sent)
├── UnreadableFile        a file named on the command line cannot be read (nothing was sent)
├── InvalidUpload         unsupported file type, empty or oversized file
├── BackendUnavailable    Supabase (or localbase) could not be reached
└── BackendError          Supabase answered with an error (permission, constraint…)
"""

from __future__ import annotations


class JobdockError(Exception):
    """Root of every error jobdock raises on purpose; its message is meant for users."""


class InvalidJobId(JobdockError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a job id (expected a UUID like 3f2c…-…)")
        self.text = text


class InvalidSettings(JobdockError):
    """The environment or ``.env`` holds a value jobdock cannot use; nothing was sent."""


class UnreadableFile(JobdockError):
    """No such file, a directory, a device, or no permission to read it."""


class InvalidUpload(JobdockError):
    """The file cannot be processed; nothing was stored or enqueued."""


class BackendUnavailable(JobdockError):
    """Supabase could not be reached."""


class BackendError(JobdockError):
    """Supabase refused a request; ``code`` is PostgREST's or Storage's."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
