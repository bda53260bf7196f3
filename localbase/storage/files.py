"""Object contents on disk, written atomically.

Layout under the storage directory::

    objects/<version>   one file per stored version (``storage.objects.version``, a UUID)
    tmp/                uploads in progress; emptied when localbase starts

A file is never named after its object key: the key only lives in the database, and the file
name is a UUID localbase generated itself, so no key can reach outside the storage directory.
An upload is written to ``tmp/``, flushed, then renamed into ``objects/`` with ``os.replace``;
a reader sees either the whole file or none, and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


class StagedFile:
    """An upload being written to ``tmp/``; counts its size and MD5 as it goes."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self.size = 0
        self.published = False
        self._md5 = hashlib.md5(usedforsecurity=False)

    @property
    def etag(self) -> str:
        return f'"{self._md5.hexdigest()}"'

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        self._md5.update(data)
        await asyncio.to_thread(self._file.write, data)

    def discard(self) -> None:
        """Drop the upload unless it was published; safe to call more than once."""
        self._file.close()
        if not self.published:
            self.path.unlink(missing_ok=True)

    def fill_from(self, source: Path) -> None:
        """Copy ``source`` into this file (blocking; size and MD5 are not tracked)."""
        with source.open("rb") as src:
            shutil.copyfileobj(src, self._file)

    def finish(self) -> None:
        """Flush to stable storage and close (blocking)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class FileStore:
    """Where object versions live; every method that touches the disk runs in a thread."""

    def __init__(self, root: Path) -> None:
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, version: str) -> Path:
        """The file of ``version``; ValueError unless it is a UUID."""
        return self.objects / str(uuid.UUID(version))

    def stage(self) -> StagedFile:
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        return StagedFile(Path(name), os.fdopen(fd, "wb"))

    async def publish(self, staged: StagedFile, version: str) -> None:
        """Move a finished upload into place as ``version``."""
        target = self.path(version)

        def move() -> None:
            staged.finish()
            os.replace(staged.path, target)
            staged.published = True

        try:
            await asyncio.to_thread(move)
        except BaseException:
            staged.discard()
            raise

    async def copy(self, source: str, version: str) -> None:
        """Store a copy of version ``source`` as ``version``."""
        staged = self.stage()
        try:
            await asyncio.to_thread(staged.fill_from, self.path(source))
        except BaseException:
            staged.discard()
            raise
        await self.publish(staged, version)

    async def open(self, version: str) -> BinaryIO | None:
        """The file of ``version`` opened for reading, or None if it is gone."""
        try:
            path = self.path(version)
            return await asyncio.to_thread(path.open, "rb")
        except (ValueError, FileNotFoundError):
            return None

    async def remove(self, versions: Iterable[str | None]) -> None:
        """Delete the files of ``versions``; missing files and None are ignored."""
        paths = [self.path(v) for v in versions if v is not None and _is_uuid(v)]

        def unlink_all() -> None:
            for path in paths:
                path.unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
