"""Atomic file writes: a reader (or a resumed job) sees either the complete old file, the complete new
file, or no file at the final path, never a partial one, even if the process is killed mid-write.

How: write a temp file, fsync it, os.replace() it onto the final path. The temp file lives in `temp_dir`
(it must be on the same filesystem as the final path) or else next to the final path. Its name is hidden
and recognisable, `.<stem-prefix>.<pid>-<8 hex>.tmp<final extension>`, so
  - `ls *.png | wc -l` never counts it, and `is_temp_name` / motiondata.verify find strays after a kill;
  - the final extension stays last, so matplotlib's savefig or np.save infer the format from it.

If os.replace() fails with EXDEV (temp_dir is on another filesystem), the temp file is copied to a temp
name in the final folder, fsynced, and that one is renamed into place: still atomic, just slower.

We fsync the file before the rename (otherwise a power loss can leave a renamed but empty file on ext4)
but not the directory after it: losing a just-finished rename in a crash only means the file is missing,
and a resumed job regenerates missing files.
"""
import errno
import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TEMP_NAME_RE = re.compile(r"^\..*\.\d+-[0-9a-f]{8}\.tmp(\.[^.]*)?$")
TEMP_STEM_PREFIX_BYTES = 64  # keeps temp names far below 255 bytes even for 244-byte stems


def temp_path_for(final_path: Path, temp_dir=None) -> Path:
    folder = Path(temp_dir) if temp_dir is not None else final_path.parent
    stem_prefix = final_path.stem.encode()[:TEMP_STEM_PREFIX_BYTES].decode(errors="ignore")
    return folder / f".{stem_prefix}.{os.getpid()}-{secrets.token_hex(4)}.tmp{final_path.suffix}"


def is_temp_name(name: str) -> bool:
    """True for names made by temp_path_for (left behind only if a writer was killed)."""
    return bool(TEMP_NAME_RE.match(name))


@contextmanager
def atomic_path(final_path, temp_dir=None):
    """Yields a temp path to write to; on success it replaces final_path, on any error it is removed.

        with atomic_path(out / "pose.png") as tmp:
            figure.savefig(tmp)
    """
    final_path = Path(final_path)
    temp_path = temp_path_for(final_path, temp_dir)
    try:
        yield temp_path
        if not temp_path.exists():
            raise FileNotFoundError(f"nothing was written to the temp file {temp_path} for {final_path}")
        fsync_file(temp_path)
        replace(temp_path, final_path)
    except BaseException:
        remove_quietly(temp_path)
        raise


def atomic_write_bytes(final_path, data: bytes, temp_dir=None):
    with atomic_path(final_path, temp_dir) as temp_path:
        with open(temp_path, "xb") as file:
            file.write(data)


def atomic_write_text(final_path, text: str, temp_dir=None, encoding="utf-8"):
    atomic_write_bytes(final_path, text.encode(encoding), temp_dir)


def atomic_write_json(final_path, obj, temp_dir=None):
    """UTF-8, ensure_ascii=False, indent=2. NaN/inf raise ValueError (strict JSON) instead of being written."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    atomic_write_text(final_path, text, temp_dir)


def atomic_save_npy(final_path, array, temp_dir=None):
    with atomic_path(final_path, temp_dir) as temp_path:
        with open(temp_path, "xb") as file:  # a file object, so np.save never appends ".npy" to the name
            np.save(file, np.asarray(array), allow_pickle=False)


def append_jsonl(path, record):
    """Appends one JSON line, flushed and fsynced. Safe for one writer per file.

    If a previous append was cut off by a kill (no final newline), a newline is written first so the
    new record stays on its own line; readers skip the cut-off fragment.
    """
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "a+b") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                line = "\n" + line
        file.write(line.encode())  # "a" mode: always written at the end
        file.flush()
        os.fsync(file.fileno())


def fsync_file(path: Path):
    fd = os.open(path, os.O_RDONLY)  # fsync through a read-only descriptor flushes the file on Linux/macOS
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(temp_path: Path, final_path: Path):
    try:
        os.replace(temp_path, final_path)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        replace_across_filesystems(temp_path, final_path)


def replace_across_filesystems(temp_path: Path, final_path: Path):
    local_temp = temp_path_for(final_path)
    try:
        shutil.copyfile(temp_path, local_temp)
        fsync_file(local_temp)
        os.replace(local_temp, final_path)
    except BaseException:
        remove_quietly(local_temp)
        raise
    remove_quietly(temp_path)


def remove_quietly(path: Path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
