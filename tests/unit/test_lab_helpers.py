"""The lab tests' own helpers fail when what they wait for does not come (a helper that returned quietly would
let a fault test pass without its fault ever happening)."""

import subprocess
import time

import pytest

from tests.e2e.test_faults_lab import finish, read_until


def test_read_until_fails_when_the_line_never_comes_even_if_nothing_is_printed(tmp_path):
    proc = subprocess.Popen(["sh", "-c", "echo started; sleep 30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        started = time.monotonic()
        with pytest.raises(AssertionError, match="'== verification' was not printed within 1s"):
            read_until(proc, "== verification", timeout=1)
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
        proc.wait()


def test_read_until_returns_the_lines_up_to_the_one_wanted_and_finish_keeps_the_rest(tmp_path):
    proc = subprocess.Popen(["sh", "-c", "echo one; echo '== two'; echo three; echo err >&2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = read_until(proc, "== ")
    assert seen == ["one\n", "== two\n"]
    run = finish(proc, tmp_path, seen)
    assert run.stdout == "one\n== two\nthree\n" and run.stderr == "err\n" and run.rc == 0


def test_the_lab_sizes_the_kernels_arp_table_for_its_hosts():
    from lab.lab import neighbour_limits
    # The kernel's defaults (128, 512, 1024) hold 5 hosts; 50 hosts reaching each other need 2,550 entries.
    assert neighbour_limits(5)["gc_thresh3"] <= 1024 and neighbour_limits(5)["gc_thresh1"] <= 128
    assert neighbour_limits(50)["gc_thresh1"] >= 50 * 50 + 50 and neighbour_limits(50)["gc_thresh3"] > 2 * 2550
