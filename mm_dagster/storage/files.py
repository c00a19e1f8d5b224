"""Files on local disk or object storage (any pyarrow filesystem), written whole."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from mm_dagster.core.errors import MonitoringError


@dataclass(frozen=True)
class StorageRoot:
    """A directory on a pyarrow filesystem: a local path, or a URI that pyarrow's
    `FileSystem.from_uri` takes, such as `s3://bucket/prefix` (credentials from the environment;
    `?endpoint_override=http://host:9000&region=...` for S3-compatible stores)."""

    fs: pafs.FileSystem
    path: str  # the root on `fs`, without a trailing slash
    scheme: str  # the URI scheme of object storage; "" on local disk

    @classmethod
    def parse(cls, root: str | Path) -> "StorageRoot":
        text = str(root)
        if "://" not in text:
            return cls(pafs.LocalFileSystem(), str(Path(text).absolute()), "")
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, ValueError, OSError) as exc:
            shown = _without_secrets(text)
            raise MonitoringError(f"storage root {shown}: {str(exc).replace(text, shown)}") from None
        if fs.type_name == "local":
            return cls(fs, path.rstrip("/") or "/", "")
        return cls(fs, path.rstrip("/"), urlsplit(text).scheme)

    @property
    def is_local(self) -> bool:
        return not self.scheme

    def join(self, *parts: str) -> str:
        """The path on the filesystem of `parts` below the root."""
        return "/".join([self.path, *parts])

    def uri(self, path: str) -> str:
        """A URI naming the file at `path`: `file:///...` on local disk, `s3://bucket/key` on S3."""
        if self.is_local:
            return Path(path).resolve().as_uri()
        return f"{self.scheme}://{path}"

    def exists(self, path: str) -> bool:
        return bool(self.fs.get_file_info(path).type != pafs.FileType.NotFound)

    def write_whole(self, path: str, write: Callable[[pa.NativeFile], object]) -> str:
        return write_atomically(path, write, self.fs)

    def __str__(self) -> str:
        return self.path if self.is_local else f"{self.scheme}://{self.path}"


def write_atomically(
    path: str, write: Callable[[pa.NativeFile], object], fs: pafs.FileSystem | None = None
) -> str:
    """Call `write(stream)` and store what it wrote at `path`, so that readers see the old file or
    the new one, never part of one, and a failed write leaves nothing behind.

    On local disk the stream is a uniquely named hidden file beside `path`, renamed over it (no
    two writers share a temporary name). On object storage, where a rename is a copy, the bytes
    are gathered in memory and stored with one put: an object appears whole or not at all.
    """
    fs = fs or pafs.LocalFileSystem()
    if fs.type_name != "local":
        buffer = pa.BufferOutputStream()
        write(buffer)
        data = buffer.getvalue()
        with fs.open_output_stream(path, compression=None) as out:
            out.write(data)
        return path
    directory, _, name = path.rpartition("/")
    fs.create_dir(directory, recursive=True)
    temp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open_output_stream(temp, compression=None) as out:
            write(out)
        fs.move(temp, path)
    except BaseException:
        if fs.get_file_info(temp).type != pafs.FileType.NotFound:
            fs.delete_file(temp)
        raise
    return path


def _without_secrets(uri: str) -> str:
    """The URI without userinfo (access keys) and query (tokens may ride there)."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
