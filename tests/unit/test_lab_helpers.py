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


def test_the_lab_writes_known_hosts_for_its_hosts_and_keeps_the_lines_of_hosts_another_inventory_booted(
        tmp_path, monkeypatch):
    """A test that boots hdss7-23 from a copy of the inventory without hdss7-22 must not cost hdss7-22 its line."""
    from ipaddress import IPv4Address

    from lab import lab
    monkeypatch.setattr(lab, "LAB_DIR", tmp_path)
    (tmp_path / "ssh").mkdir()
    lab.known_hosts().write_text("10.4.7.22 ssh-ed25519 KEY22\n10.4.7.23 ssh-ed25519 OLD23\n")
    new = lab.LabHost("hdss7-23", IPv4Address("10.4.7.23"), 24)
    (new.root / "etc/ssh").mkdir(parents=True)
    (new.root / "etc/ssh/ssh_host_ed25519_key.pub").write_text("ssh-ed25519 NEW23 root@hdss7-23\n")
    lab._write_known_hosts([new])
    assert lab.known_hosts().read_text().splitlines() == ["10.4.7.22 ssh-ed25519 KEY22", "10.4.7.23 ssh-ed25519 NEW23"]
