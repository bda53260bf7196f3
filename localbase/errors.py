"""Errors raised by localbase itself (not the HTTP error bodies it sends to clients).

LocalbaseError
├── PostgresError       the bundled PostgreSQL could not be initialised, started or stopped
├── MigrationError      a migration or the seed failed; names the file and the statement error
└── PortInUseError      a port localbase needs is taken by another process
"""


class LocalbaseError(Exception):
    """Root of every error localbase raises on purpose."""


class PostgresError(LocalbaseError):
    """The bundled PostgreSQL could not be initialised, started or stopped."""


class MigrationError(LocalbaseError):
    """A migration or the seed failed to apply."""


class PortInUseError(LocalbaseError):
    """A port localbase needs is already taken."""
