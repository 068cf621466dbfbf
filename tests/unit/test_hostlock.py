"""The lock a run holds on each host, its shell side run for real: taken at once or refused naming the holder,
held while the session's stdin is open, released when it closes or the holder is killed."""

import json
import signal
import subprocess

import pytest

from groundwork.hostlock import BUSY, BUSY_EXIT, HELD, HostLocks, NotLocked, describe_holder, lock_command

HOLDER = {"user": "alice", "controller": "ctl-1", "runbook": "full", "run": "20261203T090000Z-full",
          "started": "2026-12-03T09:00:00+00:00", "pid": 4242}


def hold(path, holder=HOLDER) -> subprocess.Popen:
    """The lock command as the host's shell runs it, its stdin standing for the SSH session's."""
    proc = subprocess.Popen(["sh", "-c", lock_command(holder, str(path))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc


def held(proc: subprocess.Popen) -> str:
    """What the lock command said up to and including its HELD line (the host's OS comes first)."""
    lines = []
    while not lines or lines[-1].strip() not in (HELD, ""):
        lines.append(proc.stdout.readline())
    return "".join(lines)


def test_a_second_taker_is_refused_at_once_with_the_holder_named_until_the_first_lets_go(tmp_path):
    path = tmp_path / "groundwork.lock"
    first = hold(path)
    assert held(first).endswith(HELD + "\n")
    second = hold(path, {**HOLDER, "user": "bob"})
    out, _ = second.communicate(timeout=5)
    assert second.returncode == BUSY_EXIT and out.startswith(BUSY), out
    assert describe_holder(out.split(BUSY, 1)[1]) == (
        "user alice on controller ctl-1, runbook full, run 20261203T090000Z-full, started "
        "2026-12-03T09:00:00+00:00, pid 4242")
    assert first.poll() is None  # still holding
    first.stdin.close()  # the run lets go: stdin closes
    first.wait(timeout=5)
    third = hold(path, {**HOLDER, "user": "bob"})
    assert held(third).endswith(HELD + "\n")
    assert json.loads(path.read_text())["user"] == "bob"
    third.stdin.close()
    third.wait(timeout=5)


def test_a_holder_killed_outright_leaves_no_lock_behind(tmp_path):
    path = tmp_path / "groundwork.lock"
    first = hold(path)
    assert held(first).endswith(HELD + "\n")
    first.send_signal(signal.SIGKILL)  # what the host sees when sshd ends a dead session's processes
    first.wait(timeout=5)
    again = hold(path)
    assert held(again).endswith(HELD + "\n")
    again.stdin.close()
    again.wait(timeout=5)


def test_holder_values_with_quotes_stay_data(tmp_path):
    path = tmp_path / "groundwork.lock"
    odd = {**HOLDER, "user": "o'brien $(touch pwned) \"x\"; `id`"}
    first = hold(path, odd)
    assert held(first).endswith(HELD + "\n")
    assert json.loads(path.read_text())["user"] == odd["user"] and not (tmp_path / "pwned").exists()
    first.stdin.close()
    first.wait(timeout=5)


def test_a_host_that_could_not_be_locked_is_never_worked_on():
    locks = HostLocks(unreachable={"hdss7-22": "cannot connect over SSH to 10.4.7.22: host down or unreachable"})
    with pytest.raises(NotLocked, match="host down or unreachable"):
        locks.check("hdss7-22")
    with pytest.raises(NotLocked, match="not locked for this run"):
        locks.check("hdss7-21")


def test_the_lock_says_the_hosts_os_before_any_stage_gathers(tmp_path):
    """The OS family is known once per host, from the lock taken before the first stage."""
    from groundwork.facts import os_info
    from groundwork.hostlock import os_of_lock_output

    first = hold(tmp_path / "groundwork.lock")
    found = os_of_lock_output(held(first))
    first.stdin.close()
    first.wait(timeout=5)
    here = subprocess.run(["sh", "-c", os_info().script], capture_output=True, text=True).stdout
    assert found == os_info().parse(here) and found.family == "debian" and found.kernel  # this machine's own
