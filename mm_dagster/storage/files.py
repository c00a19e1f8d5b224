"""Whole-file writes that readers never see half-done."""

import uuid
from collections.abc import Callable

import pyarrow.fs as pafs


def write_atomically(path: str, write: Callable[[str], object], fs: pafs.FileSystem | None = None) -> str:
    """Call `write(temp)` for a uniquely named hidden file beside `path`, then rename it over
    `path`: readers see the old file or the new one, and concurrent writers never share a
    temporary name. A failed write leaves no temporary file behind."""
    fs = fs or pafs.LocalFileSystem()
    directory, _, name = path.rpartition("/")
    fs.create_dir(directory, recursive=True)
    temp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temp)
        fs.move(temp, path)
    except BaseException:
        if fs.get_file_info(temp).type != pafs.FileType.NotFound:
            fs.delete_file(temp)
        raise
    return path
