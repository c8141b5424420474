"""One run at a time per metadata store: an exclusive advisory lock next to the SQLite file.

Two LocalDagRunner processes writing one SQLite MLMD database and one pipeline root can
interleave executions and race on the serving directory. The second run fails at once with a
clear message instead (a lock held by a killed process is released by the kernel).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PipelineBusyError(RuntimeError):
    """Another run holds the lock on this metadata store."""


@contextmanager
def run_lock(metadata_path: str) -> Iterator[Path]:
    lock_path = Path(f"{metadata_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise PipelineBusyError(
                f"another run is using {metadata_path} ({holder}); wait for it to finish or "
                "set a different pipeline.work_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # closing releases the lock
