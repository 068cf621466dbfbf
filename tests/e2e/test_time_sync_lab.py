"""Time in sync on the lab: chrony on every host, the ops host serving its own clock to the others, and (the lab's
setting) chronyd never setting the machine's clock the hosts share."""

from tests.e2e.conftest import HOSTS

OPS = "hdss7-200"


def time_checks(run) -> list[dict]:
    return [c for c in run.record["checks"] if c["check"].startswith("test_time_sync.py::")]


def test_every_host_follows_the_ops_host_within_the_bound_and_never_sets_the_clock(converged, runbook):
    lab = converged
    run = runbook(name="time_sync")
    assert run.rc == 0, run
    assert run.statuses("time_server") == {OPS: "ok"}  # converged already: a rerun changes nothing
    assert set(run.statuses("time_sync").values()) == {"ok"} and len(run.statuses("time_sync")) == 4
    checks = time_checks(run)
    assert {c["host"] for c in checks} == set(HOSTS) and {c["outcome"] for c in checks} == {"passed"}
    for host in HOSTS:
        assert lab.ssh(host, "ps -o args= -C chronyd").split()[-1] == "-x"  # follows, measures, never sets
        sources = lab.ssh(host, "chronyc -n -c sources")
        if host == OPS:  # no upstream in the lab: it serves its own clock, and answers the network
            assert sources == "" and lab.ssh(host, "chronyc -n -c tracking").startswith("7F7F0101,,10,")
        else:
            assert sources.startswith(f"^,*,{HOSTS[OPS]},10,")


def test_a_stopped_chronyd_fails_its_own_checks_only_and_a_rerun_starts_it(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "systemctl stop chrony")
    verified = runbook(name="verify")
    assert verified.rc == 5, verified
    failed = [c for c in verified.record["checks"] if c["outcome"] == "failed"]
    # The two time checks, and kubeadm's preflight's time check on this master.
    assert sorted((c["host"], c["check"].split("::")[0]) for c in failed) == [
        ("hdss7-21", "test_readiness.py"), ("hdss7-21", "test_time_sync.py"), ("hdss7-21", "test_time_sync.py")]
    assert all("chronyd does not answer" in c["message"] for c in failed)

    rerun = runbook(name="time_sync")
    assert rerun.rc == 0, rerun
    assert rerun.statuses("time_sync")["hdss7-21"] == "changed"
    assert {h for h, s in rerun.statuses("time_sync").items() if s == "changed"} == {"hdss7-21"}
    assert {c["outcome"] for c in time_checks(rerun)} == {"passed"}
