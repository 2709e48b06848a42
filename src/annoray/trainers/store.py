"""The model store: a local folder or any URI pyarrow understands (s3://, gs://), one model folder per name."""

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


class ModelStore:
    """Model folders under one root; a model appears whole (copied aside, then moved) or not at all."""

    def __init__(self, root: str):
        self.fs, self.base = resolve_filesystem(root)
        self.root = root.rstrip("/") if "://" in root else self.base
        self.fs.create_dir(self.base, recursive=True)

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, local_dir: Path, name: str) -> str:
        """Copy a model folder in under ``name``; refuses to overwrite an existing model."""
        from pyarrow import fs

        target = self._path(name)
        if self.fs.get_file_info(target).type != fs.FileType.NotFound:
            raise FileExistsError(f"model '{name}' already exists in the model store at {self.uri(name)}")
        staging = self._path(f".staging-{name}-{uuid.uuid4().hex[:8]}")
        fs.copy_files(str(local_dir), staging, source_filesystem=fs.LocalFileSystem(), destination_filesystem=self.fs)
        self.fs.move(staging, target)
        return self.uri(name)

    def get(self, name: str, local_dir: Path) -> Path:
        """Copy a model folder out of the store into ``local_dir`` (a no-op copy for a local store)."""
        from pyarrow import fs

        fs.copy_files(self._path(name), str(local_dir), source_filesystem=self.fs, destination_filesystem=fs.LocalFileSystem())
        return local_dir

    def exists(self, name: str) -> bool:
        from pyarrow import fs

        return self.fs.get_file_info(self._path(name)).type == fs.FileType.Directory
