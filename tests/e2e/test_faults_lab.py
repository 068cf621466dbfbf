"""Faults in the lab: each one leaves nothing lost, says what happened, and a plain rerun brings every host back.

The README's fault table is the list of these tests.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab import lab as lab_module
from groundwork.tasks.time_sync import CHRONY
from tests.conftest import PROJECT
from tests.e2e.conftest import HOSTS, Run, inventory_copy


def start_runbook(reports: Path, *args: str, name: str = "full") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(PROJECT / "runbooks" / f"{name}.py"), *args, "--reports",
                             str(reports)], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_until(proc: subprocess.Popen, wanted: str, timeout: float = 120) -> list[str]:
    """The runbook's output lines up to the first that contains wanted; fails when it is not printed within
    timeout seconds, even while the runbook prints nothing at all."""
    lines: list[str] = []
    pending: queue.Queue = getattr(proc, "gw_lines", None) or _line_reader(proc)
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = pending.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"{wanted!r} was not printed within {timeout:.0f}s:\n{''.join(lines)}") from None
        if line is None:
            raise AssertionError(f"the runbook ended before printing {wanted!r}:\n{''.join(lines)}")
        lines.append(line)
        if wanted in line:
            return lines


def _line_reader(proc: subprocess.Popen) -> queue.Queue:
    """The process's stdout lines, read in a thread of their own (None at the end); finish() reads the rest."""
    pending: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            pending.put(line)
        pending.put(None)
    proc.gw_lines = pending
    threading.Thread(target=read, daemon=True).start()
    return pending


def finish(proc: subprocess.Popen, reports: Path, seen: list[str]) -> Run:
    pending = getattr(proc, "gw_lines", None) or _line_reader(proc)
    err = proc.stderr.read()
    proc.wait(timeout=600)
    rest: list[str] = []
    while (line := pending.get(timeout=60)) is not None:
        rest.append(line)
    out = "".join(rest)
    return Run(subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen) + out, err), reports)


def test_a_host_killed_mid_run_fails_alone_and_a_rerun_finishes_it(converged, runbook, tmp_path):
    lab = converged
    # Work for hdss7-22 after its first stage: chrony put back and waited for (seconds), so that the kill lands
    # while the run is at work there. A converged host's stages take the run's first read and end at once.
    lab.ssh("hdss7-22", f"rm {CHRONY['debian'].conf}")
    proc = start_runbook(tmp_path / "reports")
    seen = read_until(proc, "  hdss7-22 ")  # hdss7-22 finished its first stage and keeps its connection
    lab.kill("hdss7-22")
    try:
        run = finish(proc, tmp_path / "reports", seen)
        assert run.rc == 4, run
        failed = [e for e in run.record["entries"] if e["status"] == "failed"]
        assert {e["host"] for e in failed} == {"hdss7-22"}
        error = failed[0]["error"].lower()  # cut off while connecting, or inside a change (its session gone)
        assert "10.4.7.22" in error or "connection" in error or "ssh session not active" in error, error
        assert all(e["status"] == "ok" for e in run.record["entries"] if e["host"] != "hdss7-22")
    finally:
        lab.start("hdss7-22")
    again = runbook()
    assert again.rc == 0, again


def test_sshd_refusing_logins_fails_that_host_with_the_reason(converged, runbook):
    lab = converged
    lab.ssh("hdss7-12", "echo 'DenyUsers root' >> /etc/ssh/sshd_config && systemctl reload ssh")
    try:
        run = runbook("--no-verify")
        assert run.rc == 4, run
        assert run.statuses() == {"hdss7-11": "ok", "hdss7-12": "failed", "hdss7-200": "ok", "hdss7-21": "ok",
                                  "hdss7-22": "ok"}
        assert run.entry("hdss7-12")["error"].startswith("SSH login to 10.4.7.12 refused: check the user, key")
    finally:
        lab.ssh("hdss7-12", "sudo sed -i '/^DenyUsers root$/d' /etc/ssh/sshd_config && sudo systemctl reload ssh",
                user="gwadmin")
    assert runbook().rc == 0


def test_a_wrong_key_is_refused_and_the_host_is_untouched(converged, runbook, tmp_path):
    lab = converged
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    inventory = inventory_copy(tmp_path, lambda name, data: data["connection_options"]["netmiko"]["extras"].update(
        key_file=str(tmp_path / "other")) if name == "defaults.yaml" else None)
    lab.ssh("hdss7-21", "hostnamectl set-hostname by-hand")
    run = runbook("-i", inventory, "--host", "hdss7-21", name="host_prep")
    assert run.rc == 4, run
    assert run.entry("hdss7-21")["error"].startswith("SSH login to 10.4.7.21 refused")
    assert lab.ssh("hdss7-21", "hostname").strip() == "by-hand"
    assert runbook("--host", "hdss7-21").rc == 0
    assert lab.ssh("hdss7-21", "hostname").strip() == "hdss7-21.host.com"


def fingerprint_of(public_key_line: str) -> str:
    done = subprocess.run(["ssh-keygen", "-lf", "-"], input=public_key_line, capture_output=True, text=True,
                          check=True)
    return done.stdout.split()[1]


def test_changed_and_unknown_host_keys_stop_those_hosts_with_the_fingerprint_and_the_trust_command(
        converged, runbook, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    impostor = (tmp_path / "impostor.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    lines = lab_module.known_hosts().read_text().splitlines()
    real_21 = next(line for line in lines if line.startswith("10.4.7.21 "))
    known.write_text("".join(
        f"10.4.7.21 {' '.join(impostor)}\n" if line.startswith("10.4.7.21 ") else f"{line}\n"
        for line in lines if not line.startswith("10.4.7.22 ")))
    inventory = inventory_copy(tmp_path, lambda name, data: data["connection_options"]["netmiko"]["extras"].update(
        alt_key_file=str(known)) if name == "defaults.yaml" else None)

    run = runbook("-i", inventory, name="host_prep")
    assert run.rc == 4, run
    assert run.statuses() == {"hdss7-11": "ok", "hdss7-12": "ok", "hdss7-200": "ok", "hdss7-21": "failed",
                              "hdss7-22": "failed"}
    changed, unknown = run.entry("hdss7-21")["error"], run.entry("hdss7-22")["error"]
    assert changed.startswith(f"host key of 10.4.7.21 has CHANGED: {known} has ssh-ed25519 "
                              f"{fingerprint_of(' '.join(impostor))}, the host presents ssh-ed25519 "
                              f"{fingerprint_of(real_21.split(' ', 1)[1])}")
    assert unknown.startswith(f"host key of 10.4.7.22 is unknown: {known} has no entry for it, so groundwork "
                              "did not connect")

    # The commands the messages give are what an operator runs after checking the fingerprints.
    for message in (changed, unknown):
        command = message.split("trust it: ", 1)[1]
        subprocess.run(command, shell=True, check=True, capture_output=True)
    assert runbook("-i", inventory, name="host_prep").rc == 0


def test_a_full_disk_leaves_the_file_whole_and_the_service_running(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "cp -a /etc/docker /root/docker.saved && mount -t tmpfs -o size=64k tmpfs /etc/docker && "
                        "cp -a /root/docker.saved/. /etc/docker/ && sed -i 's/\"live-restore\": true/\"live-restore\": "
                        "false/' /etc/docker/daemon.json && (head -c 1M /dev/zero > /etc/docker/filler || true)")
    try:
        by_hand = lab.ssh("hdss7-21", "cat /etc/docker/daemon.json")
        listing = lab.ssh("hdss7-21", "ls -A /etc/docker")
        run = runbook("--host", "hdss7-21", name="docker")
        assert run.rc == 4, run
        assert "No space left on device" in run.entry("hdss7-21", "docker")["error"]
        assert lab.ssh("hdss7-21", "cat /etc/docker/daemon.json") == by_hand  # whole, as it was
        assert lab.ssh("hdss7-21", "ls -A /etc/docker") == listing  # no temp file left behind
        assert lab.ssh("hdss7-21", "systemctl is-active docker").strip() == "active"

        lab.ssh("hdss7-21", "rm /etc/docker/filler")
        again = runbook("--host", "hdss7-21", name="docker")
        assert again.rc == 0, again
        assert '"live-restore": true' in lab.ssh("hdss7-21", "cat /etc/docker/daemon.json")
    finally:
        lab.ssh("hdss7-21", "umount /etc/docker; rm -rf /root/docker.saved", check=False)
    assert runbook("--host", "hdss7-21").rc == 0


BROKEN_BY_HAND = [
    ("hdss7-11", "/etc/bind/named.conf.options", "named", "bind9"),
    ("hdss7-200", "/etc/nginx/conf.d/harbor.od.com.conf", "nginx", "nginx"),
    ("hdss7-21", "/etc/docker/daemon.json", "docker", "docker"),
]


@pytest.mark.parametrize("host,path,service,unit", BROKEN_BY_HAND, ids=[b[2] for b in BROKEN_BY_HAND])
def test_a_configuration_broken_by_hand_and_its_service_down_is_put_back_and_started(
        converged, runbook, host, path, service, unit):
    lab = converged
    lab.ssh(host, f"sed -i '1i broken by hand {{' {path}; systemctl restart {unit} || true")
    assert lab.ssh(host, f"systemctl is-active {unit}", check=False).strip() != "active"
    run = runbook("--host", host)
    assert run.rc == 0, run
    assert lab.ssh(host, f"systemctl is-active {unit}").strip() == "active"
    assert "broken by hand" not in lab.ssh(host, f"cat {path}")
    kept = lab.ssh(host, f"head -n 1 $(ls -1t /var/backups/groundwork{path}.* | head -1)")
    assert kept.strip() == "broken by hand {"  # the hand edit is kept as the dated backup


def test_two_runs_started_together_the_second_stops_at_once_naming_the_holder(converged, tmp_path):
    first = start_runbook(tmp_path / "a", "--no-verify")
    second = start_runbook(tmp_path / "b", "--no-verify")
    runs = [finish(first, tmp_path / "a", []), finish(second, tmp_path / "b", [])]
    codes = sorted(r.rc for r in runs)
    assert codes == [0, 7], runs
    refused = next(r for r in runs if r.rc == 7)
    assert "another groundwork run is working on the inventory" in refused.stderr
    assert "runbook full" in refused.stderr and "pid " in refused.stderr and refused.record is None


def test_two_checkouts_of_one_inventory_never_work_on_the_same_hosts_at_once(converged, tmp_path):
    """Two operators' clones (two inventory paths, so two controller locks): the hosts' own locks stop the
    second run before it changes anything, naming who holds which host; killing the holder outright frees
    every host at once (on the main before host locks, both runs exit 0)."""
    lab = converged
    clone = inventory_copy(tmp_path, lambda name, data: None)
    lab.ssh("hdss7-22", "hostnamectl set-hostname by-hand")
    first = start_runbook(tmp_path / "a", "--no-verify")
    seen = read_until(first, "== host_prep")  # the first run holds every host
    second = start_runbook(tmp_path / "b", "-i", clone, "--no-verify")
    refused = finish(second, tmp_path / "b", [])
    assert refused.rc == 7, refused
    for host in HOSTS:
        assert host in refused.stderr
    assert "another groundwork run holds" in refused.stderr and "user root on controller" in refused.stderr
    assert "runbook full" in refused.stderr and "started " in refused.stderr and "pid " in refused.stderr
    assert refused.record is None and "== " not in refused.stdout  # no stage, no run folder
    done = finish(first, tmp_path / "a", seen)
    assert done.rc == 0 and done.statuses()["hdss7-22"] == "changed", done  # the first run's change alone

    lab.ssh("hdss7-22", "hostnamectl set-hostname by-hand")
    killed = start_runbook(tmp_path / "c", "--no-verify")
    read_until(killed, "== host_prep")
    killed.send_signal(signal.SIGKILL)  # the controller dies outright: no handler, no goodbye
    killed.wait(timeout=30)
    after = finish(start_runbook(tmp_path / "d", "-i", clone, "--no-verify"), tmp_path / "d", [])
    assert after.rc == 0, after
    assert lab.ssh("hdss7-22", "hostname").strip() == "hdss7-22.host.com"


def test_an_interrupted_run_says_what_ran_and_a_rerun_finishes(converged, runbook, tmp_path):
    lab = converged
    lab.ssh("hdss7-22", "hostnamectl set-hostname by-hand")
    proc = start_runbook(tmp_path / "reports")
    seen = read_until(proc, "== ")  # the first stage has started
    proc.send_signal(signal.SIGINT)
    run = finish(proc, tmp_path / "reports", seen)
    assert run.rc == 130, run
    assert "interrupted" in run.stdout and run.record["interrupted"] is True
    stages = {}
    for e in run.record["entries"]:
        stages.setdefault(e["stage"], set()).add(e["status"] if e["status"] != "skipped" else e["error"])
    assert stages["host_prep"] <= {"ok", "changed"}  # the stage under way finished on its hosts
    assert stages["registry"] == {"not run: the run was interrupted"}
    assert run.statuses()["hdss7-22"] == "changed"
    assert "verification" not in run.stdout
    report = (tmp_path / "reports" / run.record["run_id"] / "report.html").read_text()
    assert "Run interrupted: verification not run." in report and "by-hand" in report  # its change log
    again = runbook()
    assert again.rc == 0, again
    assert all(e["status"] == "ok" for e in again.record["entries"]
               if e["stage"] in ("host_prep",)) and again.statuses()["hdss7-22"] == "ok"


def test_ctrl_c_during_the_verification_pass_stops_at_once(converged, tmp_path):
    proc = start_runbook(tmp_path / "reports")
    seen = read_until(proc, "== verification")
    proc.send_signal(signal.SIGINT)
    run = finish(proc, tmp_path / "reports", seen)
    assert run.rc == 130, run
    assert run.record["interrupted"] is True and run.record["outcome"] == "interrupted"
    assert all(e["status"] == "ok" for e in run.record["entries"])  # every stage had finished, unchanged
    assert (tmp_path / "reports" / run.record["run_id"] / "report.html").exists()


def syn_counter(address: str):
    """Counts this machine's TCP SYNs to address:22 with an iptables rule of its own, removed on exit."""
    rule = ["OUTPUT", "-d", address, "-p", "tcp", "--dport", "22", "--syn", "-m", "comment", "--comment",
            f"gw-test-{address}", "-j", "ACCEPT"]
    subprocess.run(["iptables", "-I", *rule], check=True)

    def count() -> int:
        listing = subprocess.run(["iptables", "-L", "OUTPUT", "-v", "-x", "-n"], capture_output=True, text=True,
                                 check=True).stdout
        return int(next(line for line in listing.splitlines() if f"gw-test-{address}" in line).split()[0])

    def remove() -> None:
        subprocess.run(["iptables", "-D", *rule], check=True)
    return count, remove


def test_a_group_overriding_extras_still_checks_keys_and_an_unknown_host_is_never_connected_to(
        converged, runbook, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("".join(line + "\n" for line in lab_module.known_hosts().read_text().splitlines()
                             if not line.startswith("10.4.7.22 ")))

    def change(name, data):
        if name == "defaults.yaml":
            data["connection_options"]["netmiko"]["extras"]["alt_key_file"] = str(known)
        if name == "groups.yaml":  # in Nornir alone, this would drop the defaults' extras for the group
            data["master_compute"]["connection_options"] = {"netmiko": {"extras": {"conn_timeout": 30}}}
    count, remove = syn_counter("10.4.7.22")
    try:
        run = runbook("-i", inventory_copy(tmp_path, change), "--group", "master_compute", name="host_prep")
        assert count() == 0, "groundwork opened a connection to the host missing from known_hosts"
    finally:
        remove()
    assert run.rc == 4, run
    assert run.statuses() == {"hdss7-21": "ok", "hdss7-22": "failed"}
    assert run.entry("hdss7-22")["error"].startswith(
        f"host key of 10.4.7.22 is unknown: {known} has no entry for it, so groundwork did not connect")
