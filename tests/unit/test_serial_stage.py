"""A serial stage (etcd's members) runs its hosts one at a time, in order, and stops at the first that fails:
the next host's turn assumes the one before ended well."""

import io
from types import SimpleNamespace


from groundwork import runner
from groundwork.changes import StageError
from groundwork.context import RunContext
from groundwork.inventory import load_inventory
from groundwork.remote import Masker
from groundwork.progress import Progress
from groundwork.cli import _nornir
from groundwork.record import RunRecord
from groundwork.runner import run_stages
from groundwork.stages import Stage
from tests.conftest import copy_seed_inventory


def stage_run_on(tmp_path, monkeypatch, failing: str, stop_at_failure: bool = True, host_locks=None):
    folder = copy_seed_inventory(tmp_path)
    inventory = load_inventory(folder)
    nr = _nornir({"runner": {"plugin": "threaded", "options": {"num_workers": 5}}}, None, inventory)
    # No SSH: the stage's decide is a stand-in; the remote only has to carry a command log.
    monkeypatch.setattr(runner.Remote, "for_task",
                        classmethod(lambda cls, task, masker=None: SimpleNamespace(log=[], masker=Masker())))
    ran = []

    def decide(host, facts, ctx, notes):
        ran.append(host.name)
        if host.name == failing:
            raise StageError("the cluster is not healthy after the restart")
        notes.append("restarted")
        return []
    members = [h for h in inventory.hosts.values() if "etcd" in h.groups]
    record = RunRecord("r", "etcd", False, [h.name for h in members], "now")
    run_stages(nr, [Stage("etcd", "members", ("etcd",), probes=lambda host, ctx: [], decide=decide, serial=True, stop_at_failure=stop_at_failure)],
               RunContext(inventory=inventory, dry_run=False, masker=Masker(), host_locks=host_locks), members, record,
               Progress(record, False, out=io.StringIO()))
    return ran, {e.host: (e.status, e.error) for e in record.entries}


def test_a_serial_stage_stops_at_its_first_failing_host(tmp_path, monkeypatch):
    ran, entries = stage_run_on(tmp_path, monkeypatch, failing="hdss7-21")
    assert ran == ["hdss7-12", "hdss7-21"]  # in order, and hdss7-22 never touched
    assert entries["hdss7-12"][0] == "ok" and entries["hdss7-21"][0] == "failed"
    assert entries["hdss7-22"] == ("skipped", "not run: hdss7-21 failed before it, and etcd does its hosts one "
                                              "at a time")


def test_a_serial_stage_without_failures_runs_every_host_in_order(tmp_path, monkeypatch):
    ran, entries = stage_run_on(tmp_path, monkeypatch, failing="none")
    assert ran == ["hdss7-12", "hdss7-21", "hdss7-22"] and {s for s, _ in entries.values()} == {"ok"}


def test_a_serial_stage_that_does_not_stop_gives_the_hosts_after_a_failure_their_turn(tmp_path, monkeypatch):
    """keepalived's stage: one proxy host failing must not keep the next from taking the VIP."""
    ran, entries = stage_run_on(tmp_path, monkeypatch, failing="hdss7-12", stop_at_failure=False)
    assert ran == ["hdss7-12", "hdss7-21", "hdss7-22"]
    assert [entries[h][0] for h in ran] == ["failed", "ok", "ok"]


def test_no_stage_works_on_a_host_the_run_could_not_lock(tmp_path, monkeypatch):
    """A host unreachable when the run took its locks fails with that reason and is never worked on, even if
    it answers later: work on a host is only ever done under this run's lock on it."""
    from groundwork.hostlock import HostLocks

    locks = HostLocks(held={"hdss7-12": object(), "hdss7-21": object()},
                      unreachable={"hdss7-22": "cannot connect over SSH to 10.4.7.22: host down or unreachable"})
    ran, entries = stage_run_on(tmp_path, monkeypatch, failing="none", stop_at_failure=False, host_locks=locks)
    assert ran == ["hdss7-12", "hdss7-21"]
    assert entries["hdss7-22"] == ("failed", "cannot connect over SSH to 10.4.7.22: host down or unreachable")
