"""The local lab for end-to-end tests: real systemd, sshd and packages in systemd-nspawn hosts, over SSH."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab import lab as lab_module
from tests.conftest import PROJECT, run_runbook

HOSTS = {"hdss7-11": "10.4.7.11", "hdss7-12": "10.4.7.12", "hdss7-21": "10.4.7.21", "hdss7-22": "10.4.7.22",
         "hdss7-200": "10.4.7.200"}


def lab_command(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "lab", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"python -m lab {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


class Lab:
    def files_containing(self, host: str, text: str) -> list[str]:
        """Every file the host has written since it was made (its overlay's upper layer and /data) that
        contains text: a look at the host's disk from outside, as a forensic check would."""
        state = lab_module.LAB_DIR / "hosts" / host
        done = subprocess.run(["grep", "-rlF", "--", text, str(state / "upper"), str(state / "data")],
                              capture_output=True, text=True, timeout=300)
        return done.stdout.splitlines()

    def ssh(self, host: str, command: str, user: str = "root", check: bool = True, address: str | None = None) -> str:
        """Run a command on a lab host with the plain ssh client, as a person checking by hand would (address:
        the host's, where the lab runs another inventory than the project's)."""
        done = subprocess.run(
            ["ssh", "-i", str(lab_module.LAB_DIR / "ssh/id_ed25519"), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={lab_module.known_hosts()}", "-o", "StrictHostKeyChecking=yes",
             "-o", "ConnectTimeout=5", f"{user}@{address or HOSTS[host]}", command],
            capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, f"{host}: {command}: {done.stderr}"
        return done.stdout

    def start(self, host: str) -> None:
        lab_command("start", host)

    def kill(self, host: str) -> None:
        lab_command("kill", host)

    def stop(self, host: str) -> None:
        lab_command("stop", host)


class Run:
    """One runbook run: its exit code, its output, and the run record it wrote."""

    def __init__(self, done: subprocess.CompletedProcess, reports: Path):
        self.rc, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr
        self.reports = reports
        records = sorted(reports.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
        self.record = json.loads(records[-1].read_text()) if records else None

    def statuses(self, stage: str = "host_prep") -> dict[str, str]:
        return {e["host"]: e["status"] for e in self.record["entries"] if e["stage"] == stage}

    def entry(self, host: str, stage: str = "host_prep") -> dict:
        return next(e for e in self.record["entries"] if e["host"] == host and e["stage"] == stage)

    def __repr__(self) -> str:
        # What failed comes first: pytest cuts a long assertion message short, and CI shows only that.
        record = self.record or {}
        failed = [f"{e['host']} {e['stage']}: {e['error']}" for e in record.get("entries", [])
                  if e["status"] == "failed"]
        failed += [f"{c['host']} {c['title']}: {c['message'][:300]}" for c in record.get("checks") or []
                   if c["outcome"] in ("failed", "error")]
        return "\n".join([f"exit {self.rc}", *failed, self.stdout, self.stderr])


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab_command("up", "--fresh")
    yield Lab()


@pytest.fixture
def runbook(tmp_path):
    reports = tmp_path / "reports"

    def run(*args: str, name: str = "full", env: dict[str, str] | None = None) -> Run:
        return Run(run_runbook(*args, "--reports", str(reports), name=name, env=env), reports)
    return run


@pytest.fixture
def converged(lab, runbook):
    """Every host as the pipeline wants it, before the test changes something by hand. The test's own runs
    verify what it is about; this one's verification would only repeat theirs."""
    result = runbook("--no-verify")
    assert result.rc == 0, result
    return lab


KUBERNETES_SERVICES = "kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"


UNDECIDABLE = "product_uuid"  # kubeadm's check the lab cannot decide: containers have no DMI to read


def decided_outcomes(run) -> set[str]:
    """The outcomes of a run's checks, but the one the lab cannot decide (skipped there, never passed)."""
    return {c["outcome"] for c in run.record["checks"] if UNDECIDABLE not in c["check"]}


def kubernetes_stopped(lab) -> None:
    """Kubernetes stopped on the masters, as a test that works on what it stands on wants it; the next full run
    starts it again as it would after a reboot."""
    for host in ("hdss7-21", "hdss7-22"):
        lab.ssh(host, f"systemctl stop {KUBERNETES_SERVICES} 2>/dev/null; true")


def inventory_copy(tmp_path: Path, change) -> str:
    """The project's inventory (lab keys and all) in tmp_path, with change(file name, data) made to each file."""
    folder = tmp_path / "inventory"
    folder.mkdir()
    for name in ("hosts.yaml", "groups.yaml", "defaults.yaml"):
        data = yaml.safe_load((PROJECT / "inventory" / name).read_text())
        change(name, data)
        (folder / name).write_text(yaml.safe_dump(data))
    return str(folder)
