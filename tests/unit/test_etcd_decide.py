"""The etcd stage's decisions as data: a fresh member, a converged one, a member that lost its data, a changed
certificate rolled with the cluster's health waited for, and the inventory's group etcd."""

import tempfile
from pathlib import Path

import pytest
import yaml

from groundwork.changes import StageError
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import InventoryError, load_inventory
from groundwork.tasks import etcd
from groundwork.tasks.etcd import CERT_FILES, cert_files, decide, env_file, member_name
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
MEMBER = INVENTORY.hosts["hdss7-21"]
LAYOUT = etcd.ETCD["debian"]
CERTS = {name: f"-----BEGIN {name}-----\n".encode() for name in CERT_FILES}
NO_CLUSTER = {"healthy_others": 0, "others": 2, "members": {}, "ids": {}}
HEALTHY = {"healthy_others": 2, "others": 2,
           "members": {f"etcd-server-7-{n}": {"clientURLs": [f"https://10.4.7.{n}:2379"]} for n in (12, 21, 22)},
           "ids": {"etcd-server-7-12": "a1", "etcd-server-7-21": "b2", "etcd-server-7-22": "c3"}}
# Formed by its first two members; the third, listed since the bootstrap, has never started.
FORMING = {**HEALTHY, "members": {**HEALTHY["members"], "etcd-server-7-21": {"clientURLs": []}}}


def facts(installed=True, files=True, running=True, healthy=True, data=True, cluster=None) -> Facts:
    wanted = [env_file(MEMBER, INVENTORY, LAYOUT), *cert_files(MEMBER, CERTS, LAYOUT.user)]
    e = MEMBER.settings.etcd
    return Facts(os=DEBIAN, packages={p: ("3.4" if installed else None) for p in e.packages["debian"]},
                 services=Services({"etcd": ServiceInfo(installed, "active" if running else "inactive", "enabled")}),
                 files={w.path: on_host(w.content, mode=w.mode, owner=w.owner, group=w.group) for w in wanted}
                 if files else {},
                 paths={e.cert_dir, "/data/etcd", *([f"{e.data_dir}/member"] if data else [])},
                 local_health=healthy, cluster=cluster or HEALTHY)


def summaries(plan) -> list[str]:
    return [c.summary for c in plan]


def test_members_are_named_as_the_tutorial_names_them():
    assert [member_name(h) for h in INVENTORY.group_members("etcd")] == [
        "etcd-server-7-12", "etcd-server-7-21", "etcd-server-7-22"]


def test_the_configuration_is_the_tutorials():
    text = env_file(MEMBER, INVENTORY, LAYOUT).content.decode()
    for line in ("ETCD_NAME=etcd-server-7-21", "ETCD_DATA_DIR=/data/etcd/etcd-server",
                 "ETCD_LISTEN_CLIENT_URLS=https://10.4.7.21:2379,https://127.0.0.1:2379",
                 "ETCD_ADVERTISE_CLIENT_URLS=https://10.4.7.21:2379",
                 "ETCD_LISTEN_PEER_URLS=https://10.4.7.21:2380", "ETCD_CLIENT_CERT_AUTH=true",
                 "ETCD_PEER_CLIENT_CERT_AUTH=true", "ETCD_QUOTA_BACKEND_BYTES=8000000000", "ETCD_ENABLE_V2=false",
                 "ETCD_INITIAL_CLUSTER=etcd-server-7-12=https://10.4.7.12:2380,etcd-server-7-21=https://10.4.7.21:2380,"
                 "etcd-server-7-22=https://10.4.7.22:2380"):
        assert line in text.splitlines()
    assert "INITIAL_CLUSTER_STATE" not in text  # new by default; a rejoining member gets existing for one start


def test_a_converged_member_gets_no_change():
    notes = []
    assert decide(MEMBER, INVENTORY, facts(), CERTS, notes) == []
    assert "2 of 2 other member(s) healthy" in notes[0]


def test_a_fresh_member_joins_a_running_cluster_or_forms_one_as_its_host_finds_with_its_new_certificates():
    """A host without certificates could not ask the others: the choice is made on the host once they are in."""
    notes = []
    plan = decide(MEMBER, INVENTORY, facts(installed=False, files=False, running=False, healthy=False, data=False,
                                           cluster=NO_CLUSTER), CERTS, notes)
    assert summaries(plan)[0] == "install etcd-server etcd-client"
    assert summaries(plan)[-1] == "join the cluster when 2 of the other members answer, else form it with them"
    keys = [c for c in plan if getattr(c, "want", None) and c.want.sensitive]
    assert sorted(c.want.path.rsplit("/", 1)[1] for c in keys) == ["client-key.pem", "etcd-peer-key.pem"]
    assert all(c.want.mode == "600" and c.want.owner == "etcd" for c in keys) and "BEGIN" not in keys[0].diff
    script = plan[-1].commands[0]
    running, _, rest = script.partition("; then ")
    join, _, form = rest.partition("; else ")
    assert "-ge 2 ]" in running and "member list" in running and "grep -qF https://10.4.7.21:2380," in running
    assert "member add etcd-server-7-21 --peer-urls=https://10.4.7.21:2380" in join
    assert "ETCD_INITIAL_CLUSTER_STATE=existing" in join and "endpoint health" in join.split("restart", 1)[1]
    assert "--no-block" in form and "member add" not in form  # a member of the forming cluster waits for no one
    assert "has no certificates yet" in notes[-1]


def test_a_fresh_member_with_its_certificates_in_starts_the_cluster_it_forms_without_waiting():
    plan = decide(MEMBER, INVENTORY, facts(installed=False, running=False, healthy=False, data=False,
                                           cluster=NO_CLUSTER), CERTS, [])
    assert summaries(plan)[-1] == "start etcd (the cluster forms once a quorum of members runs)"
    assert "--no-block" in plan[-1].commands[0]


def test_a_changed_certificate_restarts_the_member_and_waits_for_the_whole_cluster():
    current = facts()
    path = f"{MEMBER.settings.etcd.cert_dir}/etcd-peer.pem"
    current["files"][path] = on_host(b"old certificate\n")
    plan = decide(MEMBER, INVENTORY, current, CERTS, [])
    assert summaries(plan) == [f"update {path}", "restart etcd and wait until the cluster is healthy"]
    wait = plan[-1].commands[1]
    assert "endpoint health" in wait and all(f"https://10.4.7.{n}:2379" in wait for n in (12, 21, 22))
    assert plan[-1].undo_files_on_failure


def test_a_member_that_lost_its_data_is_removed_and_added_again_then_joins_the_existing_cluster():
    notes = []
    plan = decide(MEMBER, INVENTORY, facts(running=False, healthy=False, data=False), CERTS, notes)
    assert summaries(plan) == ["add etcd-server-7-21 to the cluster again",
                               "restart etcd and wait until the cluster is healthy"]
    rejoin = plan[0].commands
    assert rejoin[0].endswith("member remove b2")
    assert "member add etcd-server-7-21 --peer-urls=https://10.4.7.21:2380" in rejoin[1]
    assert "ETCD_INITIAL_CLUSTER_STATE=existing" in rejoin[2]
    assert "10.4.7.21:2379" not in rejoin[0].split("member remove")[0]  # asked of the other members
    assert notes == ["etcd-server-7-21 had lost its data: removed from the cluster and added again"]


def test_a_member_that_never_started_is_added_again_and_joins_the_existing_cluster():
    """Listed since the cluster formed or was restored, but never started (its restore failed): bootstrapped
    anew it would replay the log alone and miss the restored keys; added again, it is sent the snapshot."""
    notes = []
    plan = decide(MEMBER, INVENTORY, facts(running=False, healthy=False, data=False, cluster=FORMING), CERTS, notes)
    assert summaries(plan) == ["add etcd-server-7-21 to the cluster again",
                               "restart etcd and wait until the cluster is healthy"]
    assert plan[0].commands[0].endswith("member remove b2") and "ETCD_INITIAL_CLUSTER_STATE=existing" in plan[0].commands[2]
    assert notes == ["etcd-server-7-21 had never started: removed from the cluster and added again"]


def test_a_member_the_cluster_removed_keeps_its_old_data_aside_and_is_added_anew():
    """Taken out by remove-host and back in the inventory: etcd would refuse to start on the data of the
    membership the cluster ended."""
    removed = {**HEALTHY, "members": {n: m for n, m in HEALTHY["members"].items() if n != "etcd-server-7-21"},
               "ids": {n: i for n, i in HEALTHY["ids"].items() if n != "etcd-server-7-21"}}
    notes = []
    plan = decide(MEMBER, INVENTORY, facts(running=False, healthy=False, cluster=removed), CERTS, notes)
    assert summaries(plan) == [
        "stop etcd and keep the data of its earlier membership aside as /data/etcd/etcd-server.left-cluster[.N]",
        "add etcd-server-7-21 to the cluster again", "restart etcd and wait until the cluster is healthy"]
    assert "mv /data/etcd/etcd-server" in plan[0].commands[1]
    assert "member remove" not in " ".join(plan[1].commands)  # not listed: only added
    assert notes == ["etcd-server-7-21 was removed from the cluster: its old data kept aside, added again"]
    # Without the others' quorum nothing of its data is touched.
    alone = {**removed, "healthy_others": 0}
    assert not any("aside" in c for c in summaries(decide(MEMBER, INVENTORY, facts(running=False, healthy=False,
                                                                                   cluster=alone), CERTS, [])))


def test_a_healthy_member_of_a_two_member_cluster_restarts_and_waits_for_the_members_healthy_before():
    """A host being added (hdss7-22, not a member yet): the members restart one at a time, each waiting for
    the members that answered before, not for the one that has not joined."""
    two = {"healthy_others": 1, "others": 2, "healthy_urls": ["https://10.4.7.12:2379"],
           "members": {f"etcd-server-7-{n}": {"clientURLs": [f"https://10.4.7.{n}:2379"]} for n in (12, 21)},
           "ids": {"etcd-server-7-12": "a1", "etcd-server-7-21": "b2"}}
    current = facts(cluster=two)
    path = f"{MEMBER.settings.etcd.cert_dir}/etcd-peer.pem"
    current["files"][path] = on_host(b"old certificate\n")
    plan = decide(MEMBER, INVENTORY, current, CERTS, [])
    assert summaries(plan) == [f"update {path}", "restart etcd and wait until the cluster is healthy"]
    wait = plan[-1].commands[1]
    assert "https://10.4.7.21:2379" in wait and "https://10.4.7.12:2379" in wait and "10.4.7.22" not in wait


def test_certificates_issued_in_this_run_are_one_step_named_alike_in_the_dry_run_and_the_run():
    dry = decide(MEMBER, INVENTORY, facts(), {"fresh": True}, [])
    real = decide(MEMBER, INVENTORY, facts(), {**CERTS, "fresh": True}, [])
    assert summaries(dry) == summaries(real) == [
        "install the etcd certificates issued in this run under /opt/etcd/certs",
        "restart etcd and wait until the cluster is healthy"]
    assert dry[0].diff == real[0].diff and "BEGIN" not in real[0].diff
    written = []

    class Remote:
        def write_file(self, path, content, **attrs):
            written.append((path, content, attrs["mode"], attrs["owner"]))
    real[0].action(Remote())
    assert sorted((p.rsplit("/", 1)[1], m, o) for p, _, m, o in written) == [
        ("ca.pem", "0644", "root"), ("client-key.pem", "0600", "etcd"), ("client.pem", "0644", "root"),
        ("etcd-peer-key.pem", "0600", "etcd"), ("etcd-peer.pem", "0644", "root")]
    assert all(content == CERTS[p.rsplit("/", 1)[1]] for p, content, _, _ in written)


def test_without_the_ops_host_in_the_run_a_member_keeps_its_certificates_and_one_without_stops():
    notes = []
    assert decide(MEMBER, INVENTORY, facts(), None, notes) == []  # --host hdss7-21: nothing to do
    assert notes[0] == "certificates kept as they are: the CA's host hdss7-200 is not in this run"
    with pytest.raises(StageError, match="come from the CA on hdss7-200, which is not in this run, and hdss7-21 "
                                         "has none yet: run with it too"):
        decide(MEMBER, INVENTORY, facts(files=False), None, [])


def test_an_empty_etcd_group_is_refused_and_an_even_one_warned_about(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    hosts = yaml.safe_load((folder / "hosts.yaml").read_text())
    for entry in hosts.values():
        entry["groups"] = [g for g in entry["groups"] if g != "etcd"]
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    with pytest.raises(InventoryError) as refused:
        load_inventory(folder)
    assert "group 'etcd' has no host" in refused.value.report()
    hosts["hdss7-21"]["groups"].append("etcd")
    hosts["hdss7-22"]["groups"].append("etcd")
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    assert any("2 members" in w and "odd" in w for w in load_inventory(folder).warnings)


# -- a CA roll ---------------------------------------------------------------------------------------------

def _ca_and_peer():
    from cryptography import x509 as _x509

    from groundwork import pki
    settings = MEMBER.settings.ca.model_copy(update={"key_algo": "ecdsa", "key_size": 256})
    files = pki.make_ca(settings)
    cert = _x509.load_pem_x509_certificate(files.cert_pem)
    key = pki.load_pair(files.cert_pem, files.key_pem)[1]
    peer, _ = pki.issue(cert, key, "peer", "k8s-etcd", ["10.4.7.21"], settings)
    return files.cert_pem, peer


OLD_CA, OLD_PEER = _ca_and_peer()
NEW_CA, NEW_PEER = _ca_and_peer()


def on_the_old_ca() -> Facts:
    current = facts()
    d = MEMBER.settings.etcd.cert_dir
    current["files"][f"{d}/ca.pem"] = on_host(OLD_CA)
    current["files"][f"{d}/etcd-peer.pem"] = on_host(OLD_PEER)
    return current


def test_moving_a_member_to_a_ca_its_peers_do_not_trust_is_refused_with_the_way_to_roll_it():
    with pytest.raises(StageError, match=r"etcd-server-7-21 would move to certificates of a CA its peers do not "
                                         r"trust yet .* nothing was changed. Roll the CA: list the previous CA's "
                                         r"certificate in ca.extra_trusted_cas"):
        decide(MEMBER, INVENTORY, on_the_old_ca(), {**CERTS, "ca.pem": NEW_CA, "etcd-peer.pem": NEW_PEER}, [])


def test_a_roll_trusts_both_cas_first_then_moves_the_certificates_then_drops_the_old_ca():
    d = MEMBER.settings.etcd.cert_dir
    bundle = NEW_CA + OLD_CA
    handed = {**CERTS, "ca.pem": bundle, "etcd-peer.pem": NEW_PEER}
    notes = []
    first = decide(MEMBER, INVENTORY, on_the_old_ca(), handed, notes)
    assert summaries(first) == [f"update {d}/ca.pem", "restart etcd and wait until the cluster is healthy"]
    assert first[0].want.content == bundle and "CA roll" in notes[-1]
    # run again: the member trusts both, so it takes the new CA's certificates
    trusting_both = on_the_old_ca()
    trusting_both["files"][f"{d}/ca.pem"] = on_host(bundle)
    second = decide(MEMBER, INVENTORY, trusting_both, {**handed, "etcd-peer.pem": NEW_PEER}, [])
    assert f"update {d}/etcd-peer.pem" in summaries(second)
    # the old CA dropped from the inventory: the member trusts only the new CA
    moved = facts()
    moved["files"][f"{d}/ca.pem"] = on_host(bundle)
    moved["files"][f"{d}/etcd-peer.pem"] = on_host(NEW_PEER)
    third = decide(MEMBER, INVENTORY, moved, {**CERTS, "ca.pem": NEW_CA, "etcd-peer.pem": NEW_PEER}, [])
    assert summaries(third)[0] == f"update {d}/ca.pem"


def test_a_member_that_never_started_is_known_by_its_peer_url():
    """etcd lists a member that never started (a forming cluster's last one, or one whose restore failed)
    without a name: it is still a member, joined without being added again."""
    import json

    from groundwork.tasks.etcd import cluster_probe

    listed = {"members": [{"ID": 1, "name": "etcd-server-7-12", "peerURLs": ["https://10.4.7.12:2380"],
                           "clientURLs": ["https://10.4.7.12:2379"]},
                          {"ID": 2, "peerURLs": ["https://10.4.7.22:2380"]}]}
    parsed = cluster_probe(MEMBER, INVENTORY).parse(f"health\n[]\nmembers\n{json.dumps(listed)}\n")
    assert parsed["members"]["etcd-server-7-22"] == listed["members"][1] and parsed["ids"]["etcd-server-7-22"] == "2"
