"""One run at a time per host, from any controller: a lock held on the host itself for the whole run.

Each targeted host runs, over the run's own SSH session, `flock` on /run/groundwork.lock followed by a `cat`
that reads the session's stdin and keeps the lock's file descriptor open. The lock lives as long as that
process: the run lets go by closing its stdin, and when the controller dies, however it dies (SIGKILL, a
dropped link, a power cut), sshd ends the session, cat reads end-of-file and the host's kernel releases the
lock. There is never a stale lock to remove.

The lock file names its holder (user, controller, runbook, run, start, pid), so a second run, from this
controller or another, stops before it changes anything and says who holds which host. /run is root's alone:
no other user can put a link where the lock file goes.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from nornir.core.task import Result, Task

from groundwork.facts import OsInfo, os_info
from groundwork.remote import Held, Masker, Remote

LOCK_FILE = "/run/groundwork.lock"
HELD, BUSY = "GW-LOCK-HELD", "GW-LOCK-BUSY"
BUSY_EXIT = 75  # EX_TEMPFAIL


class HostsLocked(Exception):
    """Another run holds one or more of the targeted hosts (exit 7); nothing was done."""


class NotLocked(Exception):
    """A host this run could not lock: its stages fail with the reason."""


def lock_command(holder: dict, path: str = LOCK_FILE) -> str:
    """Take the host's lock without waiting and hold it until stdin closes; say who holds it when taken."""
    q = shlex.quote(path)
    return (f"exec 9>>{q} || exit 70; "
            f"if ! flock -n 9; then echo {BUSY}; cat {q}; exit {BUSY_EXIT}; fi; "
            f"printf '%s\\n' {shlex.quote(json.dumps(holder, sort_keys=True))} > {q}; "
            f"{{ {os_info().script}; }} 2>/dev/null; echo {HELD}; exec cat > /dev/null")


def os_of_lock_output(stdout: str) -> OsInfo:
    """The host's OS as the lock command printed it before HELD: the stages know it before their first gather."""
    return os_info().parse(stdout.split(HELD, 1)[0])


def describe_holder(text: str) -> str:
    """The lock file's holder as a person reads it."""
    try:
        h = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "a run that has not said who it is yet"
    return (f"user {h.get('user', '?')} on controller {h.get('controller', '?')}, runbook {h.get('runbook', '?')}, "
            f"run {h.get('run', '?')}, started {h.get('started', '?')}, pid {h.get('pid', '?')}")


@dataclass
class HostLocks:
    """The locks a run holds, and what kept it from locking a host it could not reach."""

    held: dict[str, Held] = field(default_factory=dict)
    busy: dict[str, str] = field(default_factory=dict)  # host -> who holds it
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> the error, for its first stage
    os: dict[str, OsInfo] = field(default_factory=dict)  # host -> its OS, read with the lock

    def release(self) -> None:
        for lock in self.held.values():
            lock.release()
        self.held.clear()

    def check(self, host: str) -> None:
        """Before a host's stage: a host that could not be locked (unreachable at the start) fails with the
        reason, and is never worked on unlocked."""
        if host in self.unreachable:
            raise NotLocked(self.unreachable[host])
        if host not in self.held:
            raise NotLocked(f"{host} is not locked for this run: nothing is done on it")


def acquire(nr, hosts: list[str], holder: dict, masker: Masker, describe_error) -> HostLocks:
    """Lock every host at once; HostsLocked naming each held host and its holder when any is taken (the locks
    this run got are released first). describe_error(exc, host name, nornir host) words a connection failure."""
    locks = HostLocks()

    def take(task: Task) -> Result:
        name = task.host.name
        try:
            remote = Remote.for_host(task.host, task.nornir.config, masker)
            lock = remote.hold(lock_command(holder), HELD)
        except Exception as exc:  # noqa: BLE001 - a host that cannot be reached fails in its first stage
            locks.unreachable[name] = describe_error(exc, name, task.host)
            return Result(host=task.host)
        if lock.channel is not None:
            locks.held[name] = lock
            locks.os[name] = os_of_lock_output(lock.stdout)
        elif lock.rc == BUSY_EXIT and BUSY in lock.stdout:
            locks.busy[name] = describe_holder(lock.stdout.split(BUSY, 1)[1])
        else:
            locks.unreachable[name] = (f"could not take the host's lock {LOCK_FILE} (exit {lock.rc}): "
                                       f"{(lock.stderr or lock.stdout).strip()[-300:]}")
        return Result(host=task.host)

    nr.filter(filter_func=lambda h: h.name in hosts).run(task=take, name="lock")
    if locks.busy:
        locks.release()
        by_holder: dict[str, list[str]] = {}
        for host in hosts:
            if host in locks.busy:
                by_holder.setdefault(locks.busy[host], []).append(host)
        raise HostsLocked("another groundwork run holds " + "; ".join(
            f"{', '.join(held)} ({who})" for who, held in by_holder.items()) + ": nothing was done; wait for it "
            f"to finish (the lock is {LOCK_FILE} on each host, released when that run's SSH session ends)")
    return locks
