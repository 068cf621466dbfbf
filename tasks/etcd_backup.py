"""Backup and restore of the etcd cluster: snapshots kept on the ops host, with their SHA-256.

Backup: the first healthy member saves a snapshot (`etcdctl snapshot save`, checked with `snapshot status`);
it travels in memory to the ops host, where it is kept as BACKUP_DIR/ID.db (0600) beside ID.db.sha256, the
newest N kept. Restore: the snapshot is read back from the ops host and its digest checked, every member is
stopped, its data directory moved aside (kept as DATA_DIR.before-ID, or .before-ID.2 and on when restored from
the same snapshot again) and restored from the snapshot with the member's own name and peer address, then the
members start again and form the cluster anew. etcdctl reaches the member's own client port over TLS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex

from groundwork import facts as probes
from groundwork.changes import ActionChange, Change, StageError, value_diff
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.remote import Remote
from groundwork.stages import Stage
from groundwork.tasks.etcd import etcdctl, local_health, local_url, member_name, peer_url

SNAPSHOT = "etcd_snapshot"  # RunContext.handoff key: {"id", "data", "status"}
SNAPSHOT_ID = re.compile(r"snapshot-\d{8}T\d{6}Z")


def backup_path(host: HostModel, snapshot_id: str) -> str:
    return f"{host.settings.etcd.backup_dir}/{snapshot_id}.db"


# -- backup ---------------------------------------------------------------------------------------------

def _placeholder(host: HostModel, ctx: RunContext) -> dict:
    return {"id": ctx.plan_time.strftime("snapshot-%Y%m%dT%H%M%SZ"), "data": None, "status": None,
            "member": host.name}


def save_probes(host: HostModel, ctx: RunContext) -> list[probes.Probe]:
    return [] if SNAPSHOT in ctx.handoff else [local_health(host)]


def decide_save(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """The first healthy member (members run one at a time) saves the snapshot; the others have nothing to do."""
    if SNAPSHOT in ctx.handoff:
        notes.append(f"the snapshot was taken from {ctx.handoff[SNAPSHOT]['member']}")
        return []
    if not facts["local_health"]:
        notes.append(f"{member_name(host)} is not healthy: another member gives the snapshot")
        return []
    snapshot_id = _placeholder(host, ctx)["id"]
    local = etcdctl(host, [local_url(host)], timeout="30s")

    def save(r: Remote) -> None:
        out = r.run(f"set -e; t=$(mktemp -d); trap 'rm -rf \"$t\"' EXIT; {local} snapshot save \"$t/s.db\" >&2; "
                    f"ETCDCTL_API=3 etcdctl snapshot status \"$t/s.db\" -w json; base64 -w0 \"$t/s.db\"",
                    what="saving an etcd snapshot", sensitive_output=True).stdout
        status_line, _, data = out.partition("\n")
        ctx.handoff[SNAPSHOT] = {"id": snapshot_id, "data": base64.b64decode(data.strip()),
                                 "status": json.loads(status_line), "member": host.name}
    return [ActionChange(f"save {snapshot_id} from {member_name(host)} and check it (snapshot status)",
                         value_diff("snapshot", None, f"{snapshot_id}, from {host.name}"), save)]


def hand_save(host: HostModel, before: Facts, after: Facts, ctx: RunContext) -> dict:
    """A dry run names the snapshot the member would save, for the ops host's plan."""
    if ctx.dry_run and SNAPSHOT not in ctx.handoff and before.get("local_health"):
        return {SNAPSHOT: _placeholder(host, ctx)}
    return {}


def decide_store(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """Keep the snapshot on the ops host with its SHA-256, and only the newest backups_kept of them."""
    snapshot = ctx.handoff.get(SNAPSHOT)
    if snapshot is None:
        raise StageError("no member of group etcd was healthy enough to give a snapshot; nothing was stored")
    e = host.settings.etcd
    path = backup_path(host, snapshot["id"])
    notes.append(f"kept in {e.backup_dir}: the newest {e.backups_kept}")

    def store(r: Remote) -> None:
        data = snapshot["data"]
        digest = hashlib.sha256(data).hexdigest()
        r.run(f"mkdir -p -m 700 {shlex.quote(e.backup_dir)}")
        # Every key of the cluster is in it, secrets too: never shown in a diff.
        r.write_file(path, data, mode="0600", previous=None, sensitive=True)
        r.write_file(path + ".sha256", f"{digest}  {snapshot['id']}.db\n".encode(), mode="0600", previous=None)
        r.run(f"cd {shlex.quote(e.backup_dir)} && ls -1 snapshot-*.db | sort -r | tail -n +{e.backups_kept + 1} "
              "| while read -r f; do rm -f -- \"$f\" \"$f.sha256\"; done")
        notes.append(f"{snapshot['id']}: {len(data)} bytes, sha256 {digest}, {snapshot['status'].get('totalKey', '?')} "
                     f"keys, revision {snapshot['status'].get('revision', '?')}")
    return [ActionChange(f"keep {snapshot['id']} in {e.backup_dir} with its SHA-256", value_diff(
        path, None, f"snapshot from {snapshot['member']}, with {path}.sha256"), store)]


SAVE = Stage(name="etcd_snapshot", title="an etcd snapshot from a healthy member", groups=("etcd",), serial=True,
             checks="test_etcd.py", probes=save_probes, decide=decide_save, hand_off=hand_save)
STORE = Stage(name="etcd_backup_store", title="the snapshot kept on the ops host", groups=("ops",),
              checks="test_etcd.py", probes=lambda host, ctx: [], decide=decide_store)


# -- restore ----------------------------------------------------------------------------------------------

def fetch_stage(snapshot_id: str) -> Stage:
    def paths(host: HostModel) -> tuple[str, str]:
        path = backup_path(host, snapshot_id)
        return path, path + ".sha256"

    def decide_fetch(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
        path, digest_file = paths(host)
        found = facts["contents"]
        if found[path] is None:
            raise StageError(f"no snapshot {snapshot_id} in {host.settings.etcd.backup_dir} on {host.name} "
                             f"(runbooks/etcd_backup.py lists what it kept in its report)")
        digest = hashlib.sha256(found[path]).hexdigest()
        if [digest.encode()] != (found[digest_file] or b"").split()[:1]:
            raise StageError(f"{path} does not match its {digest_file} (sha256 {digest}): not restoring from it")
        notes.append(f"{snapshot_id}: {len(found[path])} bytes, sha256 {digest} as kept")
        return []

    return Stage(name="etcd_restore_fetch", title=f"read {snapshot_id} back from the ops host", groups=("ops",),
                 checks="test_etcd.py", probes=lambda host, ctx: [probes.contents(list(paths(host)), sensitive=True)],
                 decide=decide_fetch,
                 hand_off=lambda host, before, after, ctx: {SNAPSHOT: {
                     "id": snapshot_id, "data": before["contents"][paths(host)[0]], "member": host.name}})


def decide_restore(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """Stop the member, keep its data aside, restore the snapshot as this member."""
    snapshot = ctx.handoff.get(SNAPSHOT)
    if snapshot is None:
        raise StageError("the snapshot was not read from the ops host; nothing was restored")
    e = host.settings.etcd
    members = ctx.inventory.group_members("etcd")
    cluster = ",".join(f"{member_name(m)}={peer_url(m)}" for m in members)
    data, aside = shlex.quote(e.data_dir), shlex.quote(f"{e.data_dir}.before-{snapshot['id']}")
    # The member's data goes aside before anything else, under a name no earlier restore took (restoring the
    # same snapshot twice keeps both): a restore that fails then leaves the member without data, and the next
    # run of the etcd stage starts it into the restored cluster, instead of on the old cluster's id for good.
    restore = (f"set -e; a={aside}; n=1; while [ -e \"$a\" ]; do n=$((n+1)); a={aside}.$n; done; "
               f"if [ -e {data} ]; then mv {data} \"$a\"; echo \"aside=$a\"; fi; "
               f"t=$(mktemp -d); trap 'rm -rf \"$t\"' EXIT; cat > \"$t/s.db\"; "
               f"ETCDCTL_API=3 etcdctl snapshot restore \"$t/s.db\" --name {shlex.quote(member_name(host))} "
               f"--initial-cluster {shlex.quote(cluster)} --initial-cluster-token {shlex.quote(e.cluster_token)} "
               f"--initial-advertise-peer-urls {shlex.quote(peer_url(host))} --data-dir \"$t/restored\" >&2; "
               f"mv \"$t/restored\" {data}; chown -R etcd:etcd {data}; chmod 700 {data}")

    def apply(r: Remote) -> None:
        r.run("systemctl stop etcd", what="stopping etcd")
        done = r.run(restore, stdin=snapshot["data"] or b"", what=f"restoring {snapshot['id']}")
        notes.extend(f"the member's previous data kept as {line[6:]}" for line in done.stdout.splitlines()
                     if line.startswith("aside="))
    return [ActionChange(
        f"stop etcd, keep {e.data_dir} aside as {e.data_dir}.before-{snapshot['id']}[.N], restore {snapshot['id']}",
        value_diff(e.data_dir, "the member's data", f"restored from {snapshot['id']} as {member_name(host)}"),
        apply)]


RESTORE = Stage(name="etcd_restore", title="every member restored from the snapshot", groups=("etcd",),
                checks="test_etcd.py", probes=lambda host, ctx: [], decide=decide_restore)
