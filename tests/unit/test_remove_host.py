"""remove-host's decisions as data: the inventory and the command must agree, a member comes out only while the
members left hold a quorum, and what it was is on record."""

import tempfile
from pathlib import Path

import pytest

from groundwork.changes import StageError
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import load_inventory
from groundwork.remote import Masker
from groundwork.tasks.remove_host import REMOVED, member_removal, node_removal
from tests.conftest import copy_seed_inventory, run_runbook

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
MEMBER = INVENTORY.hosts["hdss7-21"]


def cluster(healthy_others: int, names=(12, 21, 22)) -> dict:
    return {"healthy_others": healthy_others, "others": 2,
            "members": {f"etcd-server-7-{n}": {"peerURLs": [f"https://10.4.7.{n}:2380"],
                                                "clientURLs": [f"https://10.4.7.{n}:2379"]} for n in names},
            "ids": {f"etcd-server-7-{n}": f"id{n}" for n in names}}


def decide(stage, host, facts, handoff=None):
    ctx = RunContext(inventory=INVENTORY, dry_run=False, masker=Masker(), handoff=handoff or {})
    notes: list[str] = []
    return stage.decide(host, facts, ctx, notes), notes


def test_the_departed_member_is_taken_out_by_the_first_healthy_member_and_recorded():
    plan, notes = decide(member_removal("hdss7-99"), MEMBER, Facts(local_health=True, cluster={
        **cluster(1, (12, 21, 99))}))
    assert [c.summary for c in plan] == ["take etcd-server-7-99 out of the etcd cluster"]
    assert plan[0].commands[0].endswith("member remove id99")
    assert notes == ["etcd-server-7-99 as it was: id id99, peers https://10.4.7.99:2380, clients https://10.4.7.99:2379"]
    plan, notes = decide(member_removal("hdss7-99"), MEMBER, Facts(), handoff={REMOVED: "hdss7-12"})
    assert plan == [] and notes == ["etcd-server-7-99 was taken out by hdss7-12"]


def test_a_removal_that_would_lose_the_quorum_is_refused():
    with pytest.raises(StageError, match="needs 2 healthy members besides it, and 1 are: it would lose the quorum"):
        decide(member_removal("hdss7-99"), MEMBER, Facts(local_health=True, cluster=cluster(0, (12, 21, 99))))


def test_a_host_that_is_no_member_or_no_node_has_nothing_taken_out():
    plan, notes = decide(member_removal("hdss7-99"), MEMBER, Facts(local_health=True, cluster=cluster(2)))
    assert plan == [] and "etcd-server-7-99 is not a member of the cluster" in notes[0]
    plan, notes = decide(node_removal("hdss7-99"), INVENTORY.ops_host, Facts(node=None))
    assert plan == [] and "hdss7-99.host.com is not a node of the cluster" in notes[0]
    node = {"status": {"conditions": [{"type": "Ready", "status": "False"}], "addresses": [{"address": "10.4.7.99"}]}}
    plan, notes = decide(node_removal("hdss7-99"), INVENTORY.ops_host, Facts(node=node))
    assert [c.summary for c in plan] == ["delete the node hdss7-99.host.com from the Kubernetes API"]
    assert notes == ["hdss7-99.host.com as it was: Ready False, addresses 10.4.7.99"]


def test_a_host_still_in_the_inventory_is_refused_before_any_host_is_contacted(tmp_path):
    done = run_runbook("hdss7-22", "--confirm", "-i", str(copy_seed_inventory(tmp_path)), "--reports",
                       str(tmp_path / "reports"), name="remove_host")
    assert done.returncode == 2 and "hdss7-22 is still in the inventory" in done.stderr
    assert not (tmp_path / "reports").exists()
    done = run_runbook("hdss7-22", name="remove_host")
    assert done.returncode == 2 and "--confirm" in done.stderr
