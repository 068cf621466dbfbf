"""One run at a time per inventory on this controller: an exclusive lock that names its holder.

The lock is an flock on a file named after the inventory's folder, so it is released by the kernel when the
holding process ends, however it ends: no stale lock to clean up after a crash or a kill. It stops a second run
of the same checkout before it connects anywhere; the hosts' own locks (hostlock.py) stop runs from other
checkouts and other controllers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
import tempfile
from pathlib import Path


class LockedError(Exception):
    pass


def lock_dir() -> Path:
    """A folder of this user's alone for its lock files: /run/lock/groundwork-UID (or under the temp folder).
    A lock file in a folder anyone can write to could be a link another user planted, pointing at a file of
    ours the lock would then write to."""
    base = Path("/run/lock") if os.access("/run/lock", os.W_OK) else Path(tempfile.gettempdir())
    folder = base / f"groundwork-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise LockedError(f"the lock folder {folder} is not a private folder of this user (a link, another "
                          f"user's, or open to others): remove it, it is made again as it should be")
    return folder


def lock_path(inventory_dir: Path) -> Path:
    digest = hashlib.sha256(str(inventory_dir.resolve()).encode()).hexdigest()[:16]
    return lock_dir() / f"groundwork-{digest}.lock"


def acquire(inventory_dir: Path, holder: dict) -> object:
    """Take the inventory's lock or raise LockedError naming who holds it; keep the returned handle open."""
    path = lock_path(inventory_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise LockedError(f"cannot open the lock file {path}: {exc.strerror}") from None
    handle = os.fdopen(fd, "r+")
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
