"""Supabase Storage (``/storage/v1``) over ``storage.buckets``/``storage.objects`` and local files.

api.py        routes, the gateway check, errors → responses
buckets.py    bucket routes
objects.py    uploads, remove, move, copy, list, info
downloads.py  authenticated, public and signed downloads; URL signing
uploads.py    streaming the request body into a staged file, with the limits
files.py      object versions on disk, written atomically
tokens.py     signed-URL JWTs
names.py      valid bucket names and object keys
models.py     rows and their JSON shapes
context.py    the per-request call: role, transaction, JSON body
errors.py     Storage's error bodies
"""

from localbase.storage.api import StorageApi

__all__ = ["StorageApi"]
