"""A run cut short between writing a service's files and activating it is finished by the next run: a marker
left on the host before the first write, removed only once the activation succeeded, makes the next run's
decision activate the service although its files are as wanted."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from groundwork import changes
from groundwork import facts as probes
from groundwork.changes import DesiredFile, FileChange, PlanFailed, activate_service, apply_plan
from groundwork.context import RunContext
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.tasks.docker import DAEMON_JSON, decide, render_daemon_json
from tests.unit.host_facts import DEBIAN, on_host
from tests.unit.test_docker_decide import HOST


@pytest.fixture
def pending_dir(tmp_path, monkeypatch):
    folder = tmp_path / "pending"
    monkeypatch.setattr(changes, "PENDING_DIR", str(folder))
    return folder


def test_the_marker_stands_from_the_first_write_until_the_activation_succeeded(local_remote, tmp_path, pending_dir):
    conf = tmp_path / "app.conf"
    marker = pending_dir / "app.service"
    plan = [FileChange(DesiredFile(str(conf), b"new\n"), None, None),
            activate_service("app.service", "restart app", "", start=f"test -e {marker} && test -e {conf}")]
    apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=local_remote.masker))
    assert conf.read_bytes() == b"new\n" and not marker.exists()


def test_a_failed_activation_leaves_the_marker_for_the_next_run(local_remote, tmp_path, pending_dir):
    conf = tmp_path / "app.conf"
    plan = [FileChange(DesiredFile(str(conf), b"new\n"), None, None),
            activate_service("app.service", "restart app", "", start="exit 1", recover=["true"])]
    with pytest.raises(PlanFailed):
        apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=local_remote.masker))
    assert (pending_dir / "app.service").exists()


def test_a_dry_run_marks_nothing(local_remote, tmp_path, pending_dir):
    plan = [FileChange(DesiredFile(str(tmp_path / "app.conf"), b"new\n"), None, None),
            activate_service("app.service", "restart app", "")]
    apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=True, masker=local_remote.masker))
    assert not pending_dir.exists()


def test_the_services_probe_reads_the_markers(local_remote, pending_dir, monkeypatch):
    pending_dir.mkdir()
    (pending_dir / "keepalived").touch()
    monkeypatch.setattr(probes, "PENDING_DIR", str(pending_dir))
    services = local_remote.gather([probes.services(["keepalived", "no-such-unit"])])["services"]
    assert services.pending("keepalived") and not services.pending("no-such-unit")
    assert not services.settled("keepalived")


def test_a_service_owing_its_activation_is_activated_though_its_files_are_as_wanted():
    def facts(pending: bool) -> Facts:
        return Facts(os=DEBIAN, packages={"docker.io": "20.10", "docker-ce": None},
                     services=Services({"docker": ServiceInfo(True, "active", "enabled", pending=pending)}),
                     paths={"/data/docker", "/etc/docker"}, files={DAEMON_JSON: on_host(render_daemon_json(HOST))})
    assert decide(HOST, facts(pending=False)) == []
    assert [c.summary for c in decide(HOST, facts(pending=True))] == ["restart docker and wait until it answers"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_run_as_ctrl_c_does(sig, tmp_path):
    """While stages run, each asks the run to stop after the stage under way; after them, each stops at once."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from groundwork.session import StopSignals
        asked = []
        signals = StopSignals(lambda signum, frame: asked.append(signum))
        os.kill(os.getpid(), {int(sig)})
        time.sleep(0.1)
        print("asked to stop:", asked == [{int(sig)}], flush=True)
        signals.at_once()
        try:
            os.kill(os.getpid(), {int(sig)})
            time.sleep(1)
        except KeyboardInterrupt:
            print("stopped at once", flush=True)
        signals.restore()
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["asked to stop: True", "stopped at once"]
