"""The masters' turns through the L4 proxy: a master whose apiserver restarts waits, before the next master's
turn, until the proxy takes it again (BACKEND_FAIL_TIMEOUT), but only when a later master serves now and could
be taken out with it; on a cold start, where none serves, the next master starts at once."""

import subprocess

from groundwork.tasks import k8s_control_plane
from groundwork.tasks.lb import BACKEND_FAIL_TIMEOUT
from tests.unit.test_k8s_ca_roll import INVENTORY, MASTER, facts_of, on_host

SLEEP = f"sleep {BACKEND_FAIL_TIMEOUT}"


def apiserver_restart(later_answering: set[str]) -> list[str]:
    """The commands of the first master's apiserver restart, on a host whose files are in place (the CA's host
    not in the run) and whose apiserver is down."""
    files = on_host(k8s_control_plane.desired(MASTER, INVENTORY, k8s_control_plane._EMPTY))
    facts = facts_of(files, ("kube-controller-manager", "kube-scheduler")) | {"later_answering": later_answering}
    plan = k8s_control_plane.decide(MASTER, INVENTORY, facts, None, False, [])
    [restart] = [c for c in plan if getattr(c, "pending", None) == "kube-apiserver"]
    return restart.commands


def test_the_later_masters_are_the_backends_after_this_one():
    assert k8s_control_plane.later_masters(MASTER, INVENTORY) == ["10.4.7.22"]
    assert k8s_control_plane.later_masters(INVENTORY.hosts["hdss7-22"], INVENTORY) == []
    assert k8s_control_plane.later_masters(INVENTORY.ops_host, INVENTORY) == []


def test_a_master_restarted_while_a_later_one_serves_waits_for_the_proxy_to_take_it_again():
    assert SLEEP in apiserver_restart({"10.4.7.22"})


def test_on_a_cold_start_the_next_master_does_not_wait():
    assert SLEEP not in apiserver_restart(set())


def test_the_probe_asks_each_later_master_over_tls_without_needing_the_ca():
    probe = k8s_control_plane.later_answering(MASTER, INVENTORY)
    assert "curl -sk" in probe.script and "https://10.4.7.22:" in probe.script and "10.4.7.21" not in probe.script
    assert probe.parse("10.4.7.22\n") == {"10.4.7.22"} and probe.parse("") == set()
    for master in (MASTER, INVENTORY.hosts["hdss7-22"]):  # the last master asks no one: still a script sh runs
        script = k8s_control_plane.later_answering(master, INVENTORY).script
        assert subprocess.run(["sh", "-n", "-c", f"( {script} )"]).returncode == 0, script
