"""Taking a host out (`groundwork remove-host NAME`), once the operator took it out of the inventory.

What the pipeline cannot do from the inventory alone, because it names a host the inventory no longer has:
its etcd membership is removed first (by the first healthy member, refused when the members left would not hold
a quorum), and its Node object leaves the Kubernetes API. What each held of it (the member's id and URLs, the
node's addresses and state) is written in the run record before it goes. The pipeline then runs on the
inventory without it: its records leave the zones with the serials stepped, and etcd's cluster, the L4 proxy's
backends and the apiservers' etcd servers are written without it.
"""

from __future__ import annotations

import json
import shlex

from groundwork import facts as probes
from groundwork.changes import Change, CommandChange, StageError, value_diff
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.stages import Stage
from groundwork.tasks.etcd import cluster_probe, etcdctl, local_health, local_url, member_name_of
from groundwork.tasks.kubernetes import as_admin

REMOVED = "member_removed"  # RunContext.handoff key: the member that took the departed one out


def member_removal(name: str) -> Stage:
    departed = member_name_of(name)

    def decide(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
        if REMOVED in ctx.handoff:
            notes.append(f"{departed} was taken out by {ctx.handoff[REMOVED]}")
            return []
        if not facts["local_health"]:
            notes.append(f"{host.name}'s member is not healthy: another member takes {departed} out")
            return []
        cluster = facts["cluster"]
        listed = cluster["members"].get(departed)
        if listed is None:
            notes.append(f"{departed} is not a member of the cluster: nothing to take out")
            return []
        size = len(cluster["members"])
        healthy = cluster["healthy_others"] + 1  # this member and the healthy ones of the inventory
        if healthy < size // 2 + 1:
            raise StageError(f"taking {departed} out of a cluster of {size} needs {size // 2 + 1} healthy members "
                             f"besides it, and {healthy} are: it would lose the quorum; nothing was changed")
        member_id = cluster["ids"][departed]
        notes.append(f"{departed} as it was: id {member_id}, peers {', '.join(listed.get('peerURLs') or [])}, "
                     f"clients {', '.join(listed.get('clientURLs') or []) or 'none'}")
        return [CommandChange(f"take {departed} out of the etcd cluster",
                              [f"{etcdctl(host, [local_url(host)])} member remove {member_id}"],
                              value_diff(f"member {departed}", f"id {member_id}", None))]

    return Stage(name="etcd_member_removal", title=f"{departed} taken out of the etcd cluster", groups=("etcd",),
                 serial=True, checks="test_etcd.py",
                 probes=lambda host, ctx: [] if REMOVED in ctx.handoff else [local_health(host),
                                                                             cluster_probe(host, ctx.inventory)],
                 decide=decide,
                 hand_off=lambda host, before, after, ctx: {} if REMOVED in ctx.handoff or not before.get(
                     "local_health") else {REMOVED: host.name})


def node_removal(name: str) -> Stage:
    def node_of(host: HostModel) -> str:
        return f"{name}.{host.settings.host_domain}"

    def node_probe(host: HostModel) -> probes.Probe:
        script = f"{as_admin(host)} get node {shlex.quote(node_of(host))} -o json 2>/dev/null; true"

        def parse(text: str) -> dict | None:
            try:
                return json.loads(text) if text.strip() else None
            except ValueError:
                return None
        return probes.Probe("node", script, parse)

    def decide(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
        node = facts["node"]
        if node is None:
            notes.append(f"{node_of(host)} is not a node of the cluster: nothing to delete")
            return []
        status = node.get("status") or {}
        ready = [c["status"] for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        notes.append(f"{node_of(host)} as it was: Ready {ready[0] if ready else 'unknown'}, addresses "
                     + ", ".join(a.get("address", "") for a in status.get("addresses") or []))
        return [CommandChange(f"delete the node {node_of(host)} from the Kubernetes API",
                              [f"{as_admin(host)} delete node {shlex.quote(node_of(host))}"],
                              value_diff(f"node {node_of(host)}", "registered", None))]

    return Stage(name="k8s_node_removal", title=f"{name}'s Node object deleted", groups=("ops",),
                 checks="test_kubernetes.py",
                 select=lambda host, inventory: host.settings.kubernetes.enabled,
                 probes=lambda host, ctx: [node_probe(host)], decide=decide)
