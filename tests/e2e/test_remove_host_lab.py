"""Taking hdss7-22 (master, node, etcd member) out of the platform, adding a host it has never seen (hdss7-23),
and putting the lab back, as an operator would: take a host out of the inventory and run remove-host; put one
in and run."""

import shutil

from lab import lab as lab_module
from tests.e2e.conftest import HOSTS, decided_outcomes, inventory_copy, lab_command

GONE = "hdss7-22"
NEW, NEW_ADDRESS = "hdss7-23", "10.4.7.23"
ETCDCTL = ("ETCDCTL_API=3 etcdctl --endpoints=https://10.4.7.21:2379 --cacert /opt/etcd/certs/ca.pem "
           "--cert /opt/etcd/certs/client.pem --key /opt/etcd/certs/client-key.pem --command-timeout=5s")


def members(lab) -> list[str]:
    return sorted(line.split(", ")[2] for line in lab.ssh("hdss7-21", f"{ETCDCTL} member list").splitlines())


def nodes(lab) -> list[str]:
    return lab.ssh("hdss7-200", "kubectl get nodes -o name").split()


def serial(lab, server: str) -> int:
    return int(lab.ssh("hdss7-21", f"dig +short SOA host.com @{HOSTS[server]}").split()[2])


def changed_by_stage(run) -> dict[str, set[str]]:
    changed: dict[str, set[str]] = {}
    for e in run.record["entries"]:
        if e["status"] == "changed":
            changed.setdefault(e["stage"], set()).add(e["host"])
    return changed


def test_remove_a_master_and_member_add_a_new_one_then_put_the_first_back(converged, runbook, tmp_path, request):
    lab = converged
    before = serial(lab, "hdss7-11")
    refused = runbook(GONE, "--confirm", name="remove_host")
    assert refused.rc == 2 and f"{GONE} is still in the inventory" in refused.stderr
    assert refused.record["runbook"] == "full"  # no run folder of its own: nothing was contacted

    without = inventory_copy(tmp_path, lambda name, data: data.pop(GONE) if name == "hosts.yaml" else None)
    removed = runbook(GONE, "--confirm", "-i", without, name="remove_host")
    assert removed.rc == 0, removed
    assert GONE not in removed.record["targets"]  # the host itself is not contacted
    assert members(lab) == ["etcd-server-7-12", "etcd-server-7-21"]
    assert nodes(lab) == ["node/hdss7-21.host.com"]
    removal = [e for e in removed.record["entries"] if e["stage"] == "etcd_member_removal" and e["status"] == "changed"]
    assert len(removal) == 1 and any(n.startswith("etcd-server-7-22 as it was: id ") for n in removal[0]["notes"])
    for server in ("hdss7-11", "hdss7-12"):  # its names resolve nowhere, and the serials stepped
        answer = lab.ssh("hdss7-21", f"dig +noall +comments {GONE}.host.com @{HOSTS[server]}; "
                                     f"dig +short HDSS7-22.host.com @{HOSTS[server]}")
        assert "status: NXDOMAIN" in answer and HOSTS[GONE] not in answer
        assert serial(lab, server) > before
    for proxy in ("hdss7-11", "hdss7-12"):
        assert HOSTS[GONE] not in lab.ssh(proxy, "cat /etc/nginx/stream.d/kube-apiserver.conf")
    assert_no_failed_check(removed)

    # A host never seen before joins master_compute and etcd: the operator adds it to the inventory and runs.
    def grow(name, data):
        if name == "hosts.yaml":
            data.pop(GONE)
            data[NEW] = {"hostname": NEW_ADDRESS, "groups": ["master_compute", "etcd"]}
    (tmp_path / "grown").mkdir()
    grown = inventory_copy(tmp_path / "grown", grow)

    def retire_new_host() -> None:  # stopped and its disk removed: the next session's hdss7-23 is new again
        lab_command("-i", grown, "stop", NEW)
        shutil.rmtree(lab_module.LAB_DIR / "hosts" / NEW, ignore_errors=True)
    retire_new_host()
    request.addfinalizer(retire_new_host)
    put_back = []

    def put_the_lab_back() -> None:  # a failure below must not leave hdss7-23 a member for the tests after this
        if not put_back:
            runbook(NEW, "--confirm", name="remove_host")
    request.addfinalizer(put_the_lab_back)  # runs before retire_new_host: the member goes while it answers
    lab_command("-i", grown, "up")  # boots the new host from the base image; the running ones are left alone
    added = runbook("-i", grown)
    assert added.rc == 0, added
    assert members(lab) == ["etcd-server-7-12", "etcd-server-7-21", "etcd-server-7-23"]
    assert sorted(nodes(lab)) == ["node/hdss7-21.host.com", "node/hdss7-23.host.com"]
    for server in ("hdss7-11", "hdss7-12"):
        assert lab.ssh("hdss7-21", f"dig +short {NEW}.host.com @{HOSTS[server]}").split() == [NEW_ADDRESS]
    changed = changed_by_stage(added)
    for stage in ("host_prep", "resolver", "docker", "etcd", "k8s_binaries", "k8s_control_plane", "k8s_node"):
        assert NEW in changed[stage], stage
    # On the other hosts only what names the new host changes: its records on the primary, the proxies'
    # backends, the CA host's certificates (their SANs and its node's pair), the etcd members' cluster list, the
    # other apiserver's etcd servers and its route to the new pod network. No VIP, registry, image or CA change.
    # The secondary asks for a transfer itself when the primary's notify for both changed zones (host.com and
    # the reverse zone) has not yet been acted on at its turn: a change of its own, or none.
    others = {stage: hosts - {NEW} for stage, hosts in changed.items() if hosts - {NEW}}
    assert others.pop("dns_secondary", {"hdss7-12"}) == {"hdss7-12"}
    assert others == {
        "dns_primary": {"hdss7-11"}, "l4proxy": {"hdss7-11", "hdss7-12"}, "etcd_certs": {"hdss7-200"},
        "k8s_certs": {"hdss7-200"}, "etcd": {"hdss7-12", "hdss7-21"}, "k8s_control_plane": {"hdss7-21"},
        "pod_network": {"hdss7-21"}}
    assert decided_outcomes(added) == {"passed"}

    # Back to the lab's inventory: hdss7-23 goes with remove-host, and the same run adds hdss7-22 back.
    back = runbook(NEW, "--confirm", name="remove_host")
    put_back.append(back)
    assert back.rc == 0, back
    assert members(lab) == ["etcd-server-7-12", "etcd-server-7-21", "etcd-server-7-22"]
    assert sorted(nodes(lab)) == ["node/hdss7-21.host.com", "node/hdss7-22.host.com"]
    assert "etcd-server-7-22 was removed from the cluster: its old data kept aside, added again" in \
        back.entry(GONE, "etcd")["notes"]
    answer = lab.ssh("hdss7-21", f"dig +noall +comments {NEW}.host.com @{HOSTS['hdss7-11']}")
    assert "status: NXDOMAIN" in answer
    assert decided_outcomes(back) == {"passed"}


def assert_no_failed_check(run) -> None:
    outcomes = [c["outcome"] for c in run.record["checks"]]
    assert "failed" not in outcomes and "error" not in outcomes and outcomes.count("passed") > 50
