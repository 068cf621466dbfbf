"""Taking hdss7-22 (master, node, etcd member) out of the platform and adding it back, as an operator would:
take it out of the inventory and run remove-host; put it back in the inventory and run."""

from tests.e2e.conftest import HOSTS, inventory_copy

GONE = "hdss7-22"
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


def test_remove_a_master_and_member_then_add_it_back(converged, runbook, tmp_path):
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
    outcomes = [c["outcome"] for c in removed.record["checks"]]
    assert "failed" not in outcomes and "error" not in outcomes and outcomes.count("passed") > 50

    added = runbook()  # the project's inventory: hdss7-22 is in it again
    assert added.rc == 0, added
    assert members(lab) == ["etcd-server-7-12", "etcd-server-7-21", "etcd-server-7-22"]
    assert sorted(nodes(lab)) == ["node/hdss7-21.host.com", "node/hdss7-22.host.com"]
    assert "etcd-server-7-22 was removed from the cluster: its old data kept aside, added again" in \
        added.entry(GONE, "etcd")["notes"]
    changed = changed_by_stage(added)
    # What names it changes, and nothing else: its records, the proxies' backends, etcd's and the apiservers'
    # certificates and members; the host's own stages; no host's preparation, docker or registry.
    assert changed["dns_primary"] == {"hdss7-11"} and changed["l4proxy"] == {"hdss7-11", "hdss7-12"}
    assert GONE in changed["etcd"] and GONE in changed["k8s_node"]
    assert not {"host_prep", "docker", "registry", "vip", "ca"} & set(changed)
    assert {c["outcome"] for c in added.record["checks"]} == {"passed"}
