"""The model store and the file store: each a local folder or any URI pyarrow understands (s3://, gs://); one model
folder per name, one file per key."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any


def resolve_filesystem(root: str) -> tuple[Any, str]:
    """The pyarrow filesystem and base path of a local folder or a URI (s3://, gs://, file://)."""
    from pyarrow import fs

    if "://" in root:
        filesystem, base = fs.FileSystem.from_uri(root)
        return filesystem, base.rstrip("/")
    return fs.LocalFileSystem(), str(Path(root).expanduser().resolve())


class _Store:
    def __init__(self, root: str):
        self.fs, self.base = resolve_filesystem(root)
        self.root = root.rstrip("/") if "://" in root else self.base
        self.fs.create_dir(self.base, recursive=True)

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def delete(self, key: str) -> None:
        """Remove a file or a folder; nothing to remove is not an error."""
        from pyarrow import fs

        info = self.fs.get_file_info(self._path(key))
        if info.type == fs.FileType.Directory:
            self.fs.delete_dir(self._path(key))
        elif info.type == fs.FileType.File:
            self.fs.delete_file(self._path(key))


class FileStore(_Store):
    """Files by key (``documents/12/page-1.png``) under one root; a file appears whole (written aside, then moved) or
    not at all."""

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        staging = f"{target}.staging-{uuid.uuid4().hex[:8]}"
        with self.fs.open_output_stream(staging) as out:
            out.write(data)
        self.fs.move(staging, target)

    def get(self, key: str) -> bytes:
        with self.fs.open_input_stream(self._path(key)) as source:
            return source.read()



class ModelNameTaken(FileExistsError):
    """A model of that name is in the store already."""


class ModelStore(_Store):
    """Model folders under one root; a model appears whole (copied aside, then moved) or not at all."""

    def put(self, local_dir: Path, name: str) -> str:
        """Copy a model folder in under ``name``; refuses to overwrite an existing model (`ModelNameTaken`). A store
        that cannot be written raises the filesystem's error, and leaves no staging copy behind."""
        from pyarrow import fs

        target = self._path(name)
        if self.fs.get_file_info(target).type != fs.FileType.NotFound:
            raise ModelNameTaken(f"model '{name}' already exists in the model store at {self.uri(name)}")
        staging = self._path(f".staging-{name}-{uuid.uuid4().hex[:8]}")
        try:
            fs.copy_files(str(local_dir), staging, source_filesystem=fs.LocalFileSystem(), destination_filesystem=self.fs)
            self.fs.move(staging, target)
        except BaseException:
            try:
                self.fs.delete_dir(staging)
            except OSError:
                pass  # nothing was written, or the store cannot be written at all
            raise
        return self.uri(name)

    def get(self, name: str, local_dir: Path) -> Path:
        """Copy a model folder out of the store into ``local_dir`` (a no-op copy for a local store)."""
        from pyarrow import fs

        fs.copy_files(self._path(name), str(local_dir), source_filesystem=self.fs, destination_filesystem=fs.LocalFileSystem())
        return local_dir

    def exists(self, name: str) -> bool:
        from pyarrow import fs

        return self.fs.get_file_info(self._path(name)).type == fs.FileType.Directory
