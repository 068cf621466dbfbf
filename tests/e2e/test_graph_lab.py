"""--order graph on the lab: the pipeline run as a graph puts right what was undone on three hosts and verifies
green, its record in pipeline order; a no-op reads each host once (the run's first gather) and changes nothing."""

from groundwork.tasks.lb import STREAM_CONF
from groundwork.tasks.pipeline import PIPELINE
from groundwork.tasks.time_sync import CHRONY
from tests.e2e.conftest import HOSTS, decided_outcomes


def test_a_graph_run_puts_right_what_was_undone_and_a_noop_reads_each_host_once(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "echo 'nameserver 192.0.2.1' > /etc/resolv.conf")
    lab.ssh("hdss7-12", f"rm {STREAM_CONF}")
    lab.ssh("hdss7-11", f"rm {CHRONY['debian'].conf}")
    run = runbook("--order", "graph")
    assert run.rc == 0, run
    changed = {(e["stage"], e["host"]) for e in run.record["entries"] if e["status"] == "changed"}
    assert {("resolver", "hdss7-21"), ("time_sync", "hdss7-11")} <= changed, changed
    assert any(stage == "l4proxy" and host == "hdss7-12" for stage, host in changed), changed
    assert decided_outcomes(run) == {"passed"}
    assert "nameserver 10.4.7.11" in lab.ssh("hdss7-21", "cat /etc/resolv.conf")
    order = [s.name for s in PIPELINE]
    stages = [order.index(e["stage"]) for e in run.record["entries"]]
    assert stages == sorted(stages)  # the record in pipeline order, whichever host ended first
    assert "  hdss7-21     resolver          changed" in run.stdout  # each line names its stage

    noop = runbook("--order", "graph", "--no-verify")
    assert noop.rc == 0 and {e["status"] for e in noop.record["entries"]} == {"ok"}, noop
    for host in HOSTS:
        commands = [c["command"] for e in noop.record["entries"] if e["host"] == host for c in e["commands"]]
        assert len(commands) == 1 and "@@gw-probe" in commands[0], (host, commands)
