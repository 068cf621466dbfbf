"""One run at a time per inventory: an exclusive lock that names its holder.

The lock is an flock on a file named after the inventory's folder, so it is released by the kernel when the
holding process ends, however it ends: no stale lock to clean up after a crash or a kill.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
from pathlib import Path


class LockedError(Exception):
    pass


def lock_path(inventory_dir: Path) -> Path:
    base = Path("/run/lock") if os.access("/run/lock", os.W_OK) else Path(tempfile.gettempdir())
    digest = hashlib.sha256(str(inventory_dir.resolve()).encode()).hexdigest()[:16]
    return base / f"groundwork-{digest}.lock"


def acquire(inventory_dir: Path, holder: dict) -> object:
    """Take the inventory's lock or raise LockedError naming who holds it; keep the returned handle open."""
    path = lock_path(inventory_dir)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            other = json.loads(handle.read() or "{}")
        except ValueError:
            other = {}
        handle.close()
        who = ", ".join(f"{k} {v}" for k, v in other.items()) or "unknown"
        raise LockedError(f"another groundwork run is working on the inventory {inventory_dir} ({who}); "
                          f"wait for it to finish (lock: {path})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), **holder}))
    handle.flush()
    return handle
