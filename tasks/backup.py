"""Backup and restore of what groundwork cannot rebuild from the inventory (groundwork/backup_archive.py).

What goes in, per host: on the ops host the CA's folder (ca.pem, ca-key.pem, ca.csr, ca-config.json and every
certificate issued beside them), the registry's htpasswd and an etcd snapshot from a healthy member; on the DNS
primary its zone files, serials and all; and every host's managed configuration files (named's, nginx's,
keepalived's, etcd's, docker's, chrony's), kept as a record of the state at backup time. `backup` reads them in
one round trip per host and the archive is written on the controller once every host gave its share.

What comes back (`restore`): the CA's folder, the zone files, the htpasswd and the etcd snapshot (into
etcd.backup_dir on the ops host, for `etcd-restore`), each written only where it differs, and a zone file never
with a serial lower than the one the host has or serves (the secondaries would never transfer it). The
configuration files are not put back: the pipeline, which the restore then runs, writes them from the inventory.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Callable

from groundwork import facts as probes
from groundwork import pki
from groundwork.backup_archive import Member
from groundwork.changes import (ActionChange, Change, DesiredFile, StageError, content_digest, file_changes,
                                value_diff)
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.stages import Stage
from groundwork.tasks import dns, docker, etcd, lb, registry, time_sync
from groundwork.tasks.etcd_backup import SNAPSHOT, backup_path

ARCHIVE = "backup_members"  # RunContext.handoff key: host -> the members it gave
RESTORED_KINDS = ("ca", "zone", "htpasswd", "etcd-snapshot")


def wanted(host: HostModel, ctx: RunContext) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """([(path, kind)], [(folder, kind)]) the host gives; a file that is not there is left out."""
    inventory, family = ctx.inventory, ctx.family(host.name) or "debian"
    files: list[tuple[str, str]] = [(docker.DAEMON_JSON, "config")]
    folders: list[tuple[str, str]] = []
    if "ops" in host.groups:
        folders.append((host.settings.ca.dir, "ca"))
        if host.settings.registry.backend == "distribution":
            layout = registry.REGISTRY[family]
            files += [(layout.htpasswd, "htpasswd"), (layout.config, "config"),
                      (registry.vhost_path(host.settings.registry.name), "config")]
    if host.name == inventory.dns_primary.name and host.settings.dns.backend == "bind9":
        bind = dns.BIND[family]
        files += [(f"{bind.zone_dir}/{zone}.zone", "zone") for zone in inventory.zone_names()]
    if "proxy" in host.groups and host.settings.dns.backend == "bind9":
        bind = dns.BIND[family]
        files += [(bind.options_conf, "config"), (bind.zones_conf, "config")]
    if "proxy" in host.groups:
        files += [(lb.STREAM_CONF, "config"), (lb.KEEPALIVED_CONF, "config")]
    if "etcd" in host.groups:
        files.append((etcd.ETCD[family].env_file, "config"))
    if host.settings.time_sync.enabled:
        files.append((time_sync.CHRONY[family].conf, "config"))
    return list(dict.fromkeys(files)), folders


def read_files(files: list[str], folders: list[str]) -> probes.Probe:
    """Every named file and every file directly in the folders: mode, owner, group, content (one round trip)."""
    listing = "".join(f"find {shlex.quote(d)} -maxdepth 1 -type f 2>/dev/null | LC_ALL=C sort; " for d in folders)
    named = " ".join(shlex.quote(f) for f in files) or "''"
    script = (f"{{ {listing}printf '%s\\n' {named}; }} | "
              "while IFS= read -r f; do [ -f \"$f\" ] || continue; "
              "printf '@@gw-member %s %s\\n' \"$(stat -c '%a %U %G' -- \"$f\")\" \"$f\"; base64 -w0 -- \"$f\"; echo; done")

    def parse(text: str) -> dict[str, tuple[str, str, str, bytes]]:
        import base64

        found = {}
        for chunk in text.split("@@gw-member ")[1:]:
            head, _, body = chunk.partition("\n")
            mode, owner, group, path = head.split(" ", 3)
            found[path] = (mode, owner, group, base64.b64decode(body.strip()))
        return found
    return probes.Probe("archived", script, parse, sensitive=True)


def collect_probes(host: HostModel, ctx: RunContext) -> list[probes.Probe]:
    files, folders = wanted(host, ctx)
    return [read_files([p for p, _ in files], [d for d, _ in folders])]


def members_of(host: HostModel, facts: Facts, ctx: RunContext) -> list[Member]:
    files, folders = wanted(host, ctx)
    kinds = dict(files)
    members = []
    for path, (mode, owner, group, content) in facts["archived"].items():
        kind = kinds.get(path) or next(k for d, k in folders if path.startswith(d.rstrip("/") + "/"))
        members.append(Member(host.name, path, kind, mode, owner, group, content))
    snapshot = ctx.handoff.get(SNAPSHOT)
    if "ops" in host.groups and snapshot and snapshot.get("data"):
        path = backup_path(host, snapshot["id"])
        digest = hashlib.sha256(snapshot["data"]).hexdigest()
        members += [Member(host.name, path, "etcd-snapshot", "600", "root", "root", snapshot["data"]),
                    Member(host.name, path + ".sha256", "etcd-snapshot", "600", "root", "root",
                           f"{digest}  {snapshot['id']}.db\n".encode())]
    return members


def is_secret(path: str) -> bool:
    return path.endswith("-key.pem") or path.endswith("htpasswd") or path.endswith("keepalived.conf") \
        or path.endswith(".db")


def as_file(m: Member) -> DesiredFile:
    """The member as the file it was on its host: its plan digest is keyed when it holds a secret."""
    return DesiredFile(m.path, m.content, mode=m.mode, owner=m.owner, group=m.group, sensitive=is_secret(m.path))


def decide_collect(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """Put the host's share in the archive (a change of the controller's, not of the host)."""
    members = members_of(host, facts, ctx)
    if "ops" in host.groups and not ctx.dry_run and SNAPSHOT not in ctx.handoff and ctx.inventory.group_members("etcd"):
        raise StageError("no etcd member gave a snapshot; no archive is written without one")
    if not members:
        notes.append("nothing of this host goes in the archive")
        return []
    size = sum(len(m.content) for m in members)
    notes.append(f"{len(members)} file(s), {size} bytes, for the archive")

    def collect(remote) -> None:
        ctx.handoff.setdefault(ARCHIVE, {})[host.name] = members
    diff = "".join(value_diff(f"archive:{m.name}", None, f"{m.kind}, {m.mode} {m.owner}:{m.group}, "
                              f"{len(m.content)} bytes, {content_digest(as_file(m), ctx.digest_key)}")
                   for m in members)
    return [ActionChange(f"put {len(members)} file(s) in the backup archive", diff, collect)]


def read_secrets_of(host: HostModel, facts: Facts, ctx: RunContext) -> list[str]:
    """The keys read for the archive are masked from then on."""
    return pki.key_texts({path: content for path, (_, _, _, content) in facts["archived"].items()})


COLLECT = Stage(name="backup", title="what cannot be rebuilt, read for the archive", groups=None,
                checks="test_ca.py", probes=collect_probes, decide=decide_collect, read_secrets=read_secrets_of)


# -- restore ----------------------------------------------------------------------------------------------

def restore_stage(source: Callable[[], list[Member]]) -> Stage:
    """The stage that puts the archive's members back where they differ (configuration files excepted).
    source: the archive's members, known once it was opened (before any host is contacted)."""
    def mine_of(name: str) -> list[Member]:
        return [m for m in source() if m.host == name and m.kind in RESTORED_KINDS]

    def restore_probes(host: HostModel, ctx: RunContext) -> list[probes.Probe]:
        mine = mine_of(host.name)
        wanted_probes = [probes.files([m.path for m in mine], read_unless={m.path: m.sha256 for m in mine},
                                      sensitive=True)]
        zones = [_zone_of(m.path) for m in mine if m.kind == "zone"]
        if zones:
            wanted_probes.append(dns.soa_serials(zones, str(host.address)))
        return wanted_probes

    def decide_restore(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
        mine = mine_of(host.name)
        desired = []
        for m in mine:
            if m.kind == "zone":
                current = facts["files"].get(m.path)
                newer = [s for s in (dns.zone_serial(current.content) if current and current.content else None,
                                     facts[f"soa@{host.address}"].get(_zone_of(m.path))) if s is not None]
                archived = dns.zone_serial(m.content) or 0
                if newer and max(newer) > archived:
                    notes.append(f"{m.path} kept: serial {max(newer)} on the host is newer than the archive's "
                                 f"{archived}, and a serial never goes back")
                    continue
            desired.append(as_file(m))
        notes.append(f"{len(desired)} file(s) from the archive" + ("" if desired else ": none archived"))
        return file_changes(desired, facts["files"])

    return Stage(name="restore", title="what the archive holds, put back where it differs", groups=None,
                 checks="test_ca.py", probes=restore_probes, decide=decide_restore,
                 handed_secrets=lambda host, ctx: pki.key_texts({m.path: m.content for m in mine_of(host.name)}),
                 select=lambda host, inventory: bool(mine_of(host.name)))


def _zone_of(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".zone")


def about(members: list[Member]) -> dict:
    """What the manifest says beside the members: the CA's fingerprint, the zones' serials."""
    ca = next((m for m in members if m.kind == "ca" and m.path.endswith("/ca.pem")), None)
    return {"ca_fingerprint": pki.cert_fingerprint(ca.content) if ca else None,
            "zone_serials": {_zone_of(m.path): dns.zone_serial(m.content) for m in members if m.kind == "zone"}}

