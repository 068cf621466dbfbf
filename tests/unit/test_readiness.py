"""kubeadm's preflight as groundwork readiness checks it: each check fails on a host that lacks what it checks
(a stand-in probe answering as such a host would), and the verdict per host in the report and the index."""

import argparse
import json
import tempfile
from pathlib import Path

import pytest

from groundwork import commands, verify
from groundwork.checks import test_readiness as readiness
from groundwork.index import write_index
from groundwork.inventory import load_inventory
from groundwork.report_html import readiness_html, readiness_verdicts
from tests.conftest import copy_seed_inventory
from tests.unit.test_checks_fail_when_absent import HostThatLacks

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
H21, H22 = INVENTORY.hosts["hdss7-21"], INVENTORY.hosts["hdss7-22"]
SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
CONVERGED = (
    'LISTEN 0 4096 *:6443 *:* users:(("kube-apiserver",pid=1,fd=7))\n'
    'LISTEN 0 4096 10.4.7.21:10250 0.0.0.0:* users:(("kubelet",pid=2,fd=20))\n'
    'LISTEN 0 4096 127.0.0.1:10251 0.0.0.0:* users:(("kube-scheduler",pid=3,fd=7))\n'
    'LISTEN 0 4096 127.0.0.1:10252 0.0.0.0:* users:(("kube-controller",pid=4,fd=7))\n'
    'LISTEN 0 4096 127.0.0.1:10249 0.0.0.0:* users:(("kube-proxy",pid=5,fd=9))\n'
    'LISTEN 0 4096 10.4.7.21:2379 0.0.0.0:* users:(("etcd",pid=6,fd=8))\n'
    'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=7,fd=3))\n')


class Probe(HostThatLacks):
    def __init__(self, commands):
        super().__init__(commands)
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Session:
    """The verification session as a cross-host check sees it: the run's targets and a probe for each."""

    def __init__(self, identities: dict[str, str]):
        self.targets = list(INVENTORY.hosts.values())
        self.identities = identities

    def probe_for(self, host, evidence):
        return Probe({"product_uuid": (0, self.identities[host.name])})


def identity(mac: str, uuid: str = "") -> str:
    return f"mac={mac}\nuuid={uuid}\n"


def test_swap_on_fails_unless_the_inventory_records_kubeadms_flag():
    readiness.test_swap_is_off(H21, Probe({"swaps": (0, SWAPS_HEADER)}))
    on = {"swaps": (0, SWAPS_HEADER + "/swapfile file 1048572 0 -2\n")}
    with pytest.raises(AssertionError, match="swap is on: /swapfile"):
        readiness.test_swap_is_off(H21, Probe(on))
    allowed = H21.__class__(**{**H21.__dict__, "settings": H21.settings.model_copy(update={
        "readiness": H21.settings.readiness.model_copy(update={"allow_swap": True})})})
    probe = Probe(on)
    readiness.test_swap_is_off(allowed, probe)
    assert "--ignore-preflight-errors=Swap" in probe.warnings[0]


def test_a_port_of_its_roles_held_by_another_program_or_a_stranger_in_the_nodeport_range_fails():
    check = readiness.test_the_ports_of_its_roles_are_free_or_held_by_their_own_program
    check(H21, Probe({"ss -Hltnp": (0, CONVERGED)}))
    check(H21, Probe({"ss -Hltnp": (0, "")}))  # a host before Kubernetes: every port free
    taken = CONVERGED.replace('"kube-apiserver"', '"socat"')
    with pytest.raises(AssertionError, match="port 6443 is held by socat, not kube-apiserver"):
        check(H21, Probe({"ss -Hltnp": (0, taken)}))
    stranger = CONVERGED + 'LISTEN 0 511 0.0.0.0:8080 0.0.0.0:* users:(("nginx",pid=9,fd=6))\n'
    with pytest.raises(AssertionError, match=r"NodePort range 3000-29999: port 8080 is held by nginx"):
        check(H21, Probe({"ss -Hltnp": (0, stranger)}))


def test_a_mac_address_another_kubernetes_host_has_fails_and_an_unreadable_product_uuid_is_undecided():
    mac = readiness.test_the_mac_address_is_unique_among_the_kubernetes_hosts
    uuid = readiness.test_the_product_uuid_is_unique_among_the_kubernetes_hosts
    unique = Session({"hdss7-21": identity("02:00:00:00:00:21"), "hdss7-22": identity("02:00:00:00:00:22")})
    mac(H21, Probe({"product_uuid": (0, identity("02:00:00:00:00:21"))}), INVENTORY, unique)
    cloned = Session({"hdss7-21": identity("02:00:00:00:00:21"), "hdss7-22": identity("02:00:00:00:00:21")})
    with pytest.raises(AssertionError, match="MAC address 02:00:00:00:00:21 is also hdss7-22's"):
        mac(H21, Probe({"product_uuid": (0, identity("02:00:00:00:00:21"))}), INVENTORY, cloned)
    with pytest.raises(pytest.skip.Exception, match="cannot decide"):
        uuid(H21, Probe({"product_uuid": (0, identity("02:00:00:00:00:21"))}), INVENTORY, unique)
    same = Session({"hdss7-21": identity("a", "U-1"), "hdss7-22": identity("b", "U-1")})
    with pytest.raises(AssertionError, match="product_uuid U-1 is also hdss7-22's"):
        uuid(H21, Probe({"product_uuid": (0, identity("a", "U-1"))}), INVENTORY, same)


def test_the_runtime_the_cgroup_driver_the_kernel_the_names_the_time_and_the_size():
    with pytest.raises(AssertionError, match="the container runtime does not answer"):
        readiness.test_docker_and_the_kubelet_use_the_same_cgroup_driver(H21, Probe({}))
    with pytest.raises(AssertionError, match="docker uses cgroup driver cgroupfs, the kubelet systemd"):
        readiness.test_docker_and_the_kubelet_use_the_same_cgroup_driver(H21, Probe({"CgroupDriver": (0, "cgroupfs\n")}))
    readiness.test_bridged_traffic_is_filtered_and_forwarded(H21, Probe({"ip_forward": (0, "1\n1\nbr_netfilter=yes\n")}))
    with pytest.raises(AssertionError, match="br_netfilter is not loaded"):
        readiness.test_bridged_traffic_is_filtered_and_forwarded(H21, Probe({"ip_forward": (0, "1\nbr_netfilter=no\n")}))
    with pytest.raises(AssertionError, match="'ip_forward': '0'"):
        readiness.test_bridged_traffic_is_filtered_and_forwarded(H21, Probe({"ip_forward": (0, "0\n1\nbr_netfilter=yes\n")}))
    names = readiness.test_its_name_resolves_to_its_address_and_back
    with pytest.raises(AssertionError, match="hdss7-21.host.com resolves to nothing"):
        names(H21, Probe({"getent": (0, "forward=\nreverse=\n")}))
    with pytest.raises(AssertionError, match="10.4.7.21 resolves back to nothing, not hdss7-21.host.com"):
        names(H21, Probe({"getent": (0, "forward=10.4.7.21\nreverse=\n")}))
    with pytest.raises(AssertionError, match="resolves back to hdss7-22.host.com"):
        names(H21, Probe({"getent": (0, "forward=10.4.7.21\nreverse=hdss7-22.host.com\n")}))
    names(H21, Probe({"getent": (0, "forward=10.4.7.21\nreverse=hdss7-21.host.com.\n")}))
    with pytest.raises(AssertionError, match="chronyd does not answer"):
        readiness.test_its_time_is_in_sync(H21, Probe({}))
    with pytest.raises(AssertionError, match="1 CPU\\(s\\), 2 wanted; 977 MB of memory, 1700 wanted"):
        readiness.test_it_has_the_cpus_and_memory_kubeadm_asks_for(H21, Probe({"nproc": (0, "1\n1000448\n")}))


def result(host, check, outcome, message=""):
    return {"host": host, "check": f"test_readiness.py::{check}", "title": check, "outcome": outcome,
            "message": message}


def test_the_verdict_per_host_lists_what_failed_and_what_could_not_be_decided(tmp_path):
    results = [result("hdss7-21", "swap", "passed"), result("hdss7-21", "uuid", "skipped", "cannot decide: no uuid"),
               result("hdss7-22", "swap", "failed", "swap is on: /swapfile"),
               result("hdss7-22", "uuid", "skipped", "cannot decide: no uuid"),
               {"host": "hdss7-21", "check": "test_dns.py::x", "title": "x", "outcome": "failed", "message": ""}]
    verdicts = readiness_verdicts(results)
    assert {h: v["ready"] for h, v in verdicts.items()} == {"hdss7-21": True, "hdss7-22": False}
    assert verdicts["hdss7-21"]["undecided"] == ["uuid: cannot decide: no uuid"]  # listed, not passed
    page = readiness_html(results)
    assert "<b>hdss7-21</b>: ready for kubeadm" in page and "<b>hdss7-22</b>: NOT ready for kubeadm" in page
    assert "failed: swap: swap is on: /swapfile" in page and readiness_html(results[-1:]) == ""

    run = tmp_path / "20261205T000000Z-readiness"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"runbook": "readiness", "outcome": "verification-failed",
                                              "targets": ["hdss7-21", "hdss7-22"], "checks": results}))
    index = write_index(tmp_path).read_text()
    assert "<th>ready for kubeadm</th>" in index and '<td class="num" title="ready: hdss7-21">1/2</td>' in index


def test_readiness_is_in_every_full_pass_and_alone_when_asked_for():
    every = [m.__name__.rsplit(".", 1)[1] for m in verify.check_modules(None)]
    assert {"test_readiness", "test_time_sync", "test_certs"} <= set(every)
    assert [m.__name__ for m in verify.check_modules(["test_readiness.py"])] == ["groundwork.checks.test_readiness"]
    assert "test_readiness.py" in commands._checks_of_run(argparse.Namespace(stage=[]))
    assert "test_readiness.py" not in commands._checks_of_run(argparse.Namespace(stage=["dns"]))
