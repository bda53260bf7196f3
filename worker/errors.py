"""The worker's errors about a job. ``JobCancelled`` (``worker.stopping``) is not an error.

PermanentError                retrying cannot help: the job fails at once, not retryable
├── UnknownJobType            no handler here for the job's type
├── ResourceLimitExceeded     an isolated handler went over its memory or CPU limit
└── worker.parsing.DocumentError   an unreadable, refused or over-limit document
    └── worker.parsing.LimitExceeded
IsolatedProcessDied           the child process of an isolated handler died unasked
"""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that a retry would only repeat; the job fails for good."""


class UnknownJobType(PermanentError):
    pass


class ResourceLimitExceeded(PermanentError):
    pass


class IsolatedProcessDied(Exception):
    pass
