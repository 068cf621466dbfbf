"""Live progress: while a step runs, which host does what and for how long; a live table on a terminal, plain
lines in a log or CI."""

import io
import time

from groundwork.progress import Progress
from groundwork.record import HostStageRecord, RunRecord
from groundwork.remote import MASK, Masker


def progress(**kw) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress(RunRecord("r", "docker", False, ["hdss7-21", "hdss7-22"], "now"), False, out=out, **kw), out


def test_a_log_is_told_in_plain_lines_which_host_is_still_on_which_step():
    shown, out = progress(terminal=False, heartbeat=0.2)
    shown.start()
    shown.host_started("hdss7-21", "docker")
    shown.doing("hdss7-21", "installing docker-ce from the package repository")
    shown.host_started("hdss7-22", "docker")
    time.sleep(0.7)
    shown.host_done(HostStageRecord("hdss7-21", "docker", "changed", 0.7))
    said = out.getvalue()
    time.sleep(0.5)
    shown.stop()
    lines = said.splitlines()
    assert any("hdss7-21" in line and "docker: still installing docker-ce from the package repository" in line
               for line in lines), said
    assert any("hdss7-22" in line and "still connecting" in line for line in lines), said
    assert "\x1b[" not in out.getvalue()  # plain text, no cursor movement or colour
    later = out.getvalue()[len(said):]
    assert "hdss7-21" not in later  # a host whose stage ended is no longer said to be running


def test_a_quick_step_says_nothing_in_a_log():
    shown, out = progress(terminal=False, heartbeat=5)
    shown.start()
    shown.host_started("hdss7-21", "docker")
    shown.doing("hdss7-21", "writing /etc/docker/daemon.json")
    time.sleep(0.3)
    shown.stop()
    assert out.getvalue() == ""


def test_a_terminal_shows_a_live_table_of_the_running_steps_and_the_finished_lines_above_it():
    shown, out = progress(terminal=True)
    shown.start()
    shown.host_started("hdss7-21", "docker")
    shown.doing("hdss7-21", "installing docker-ce")
    time.sleep(0.6)
    shown.host_done(HostStageRecord("hdss7-22", "docker", "ok", 0.4))
    shown.stop()
    screen = out.getvalue()
    assert "installing docker-ce" in screen and "hdss7-21" in screen  # the live row
    assert "hdss7-22" in screen and "no change" in screen  # the finished line, printed above the table
    assert "\x1b[" in screen  # drawn for a terminal


def test_each_command_tells_the_progress_what_it_is_for_masked(local_remote):
    steps = []
    local_remote.masker = Masker(["s3cret-pw"])
    local_remote.on_step = steps.append
    local_remote.run("true", what="logging in with s3cret-pw")
    local_remote.run("echo s3cret-pw >/dev/null")
    assert steps == [f"logging in with {MASK}", f"echo {MASK} >/dev/null"]
