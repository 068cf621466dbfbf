"""The etcd cluster on the hosts of group etcd, the tutorial's next layer after the seeds (hdss7-12, -21, -22).

Two steps. On the ops host, the CA issues etcd-peer.pem (CN k8s-etcd, profile peer, every member's address as a
SAN) and client.pem (CN k8s-node, profile client, for etcdctl and later the apiservers); the CA key never
leaves that host. The certificates and their keys are then carried to every member in memory, over the SSH
sessions' stdin (never through this machine's disk): certificates 0644, keys 0600 owned by etcd's user.

On each member, etcd from the distribution is configured from one environment file (the tutorial's flags:
TLS on the member's address for clients and peers and on 127.0.0.1 for clients (the tutorial's plain http
there would answer any local user), client certificates required,
quota-backend-bytes 8000000000, data under /data/etcd), and restarted only when something changed. Members
are done one at a time: a member of a cluster that has quorum is restarted and waited for until the whole
cluster is healthy again before the next one, so quorum is never lost; members of a cluster not formed yet
are started without waiting for the others. A member whose data directory is gone while the cluster still
lists it is removed from the cluster and added again, then joins as a member of the existing cluster.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (ActionChange, Change, CommandChange, DesiredFile, StageError,
                                create_directories, file_changes, journal_tail, value_diff, wait_until, wanted_digests)
from groundwork.context import Renewal, RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, candidate_platforms, install_missing, platform_for
from groundwork.remote import Remote
from groundwork.render import render
from groundwork.runner import order_hosts
from groundwork.stages import Stage
from groundwork.tasks import ca

PEER, CLIENT = "etcd-peer", "client"
# What a member holds under cert_dir: the CA's certificate, the peer pair, the client pair (for etcdctl).
CERT_FILES = {"ca.pem": False, f"{PEER}.pem": False, f"{PEER}-key.pem": True, f"{CLIENT}.pem": False,
              f"{CLIENT}-key.pem": True}  # name -> is a key
HANDOFF = "etcd_certs"  # RunContext.handoff key: the PEMs the ops host's step read, for the members' step
REJOIN_DROPIN = "/run/systemd/system/etcd.service.d/groundwork-rejoin.conf"
WAIT_SECONDS = 60


@dataclass(frozen=True)
class EtcdLayout:
    env_file: str  # the ETCD_* variables etcd's unit reads
    service: str = "etcd"
    user: str = "etcd"


ETCD = {"debian": EtcdLayout("/etc/default/etcd"), "el": EtcdLayout("/etc/etcd/etcd.conf")}


def member_name(host: HostModel) -> str:
    """etcd-server-7-12 for hdss7-12, as the tutorial names its members; etcd-server-NAME for other names."""
    return member_name_of(host.name)


def member_name_of(name: str) -> str:
    """A member's name from its host's name, for a host the inventory no longer has (remove-host)."""
    found = re.fullmatch(r"hdss(\d+)-(\d+)", name)
    return f"etcd-server-{found.group(1)}-{found.group(2)}" if found else f"etcd-server-{name}"


def peer_url(host: HostModel) -> str:
    return f"https://{host.address}:{host.settings.etcd.peer_port}"


def client_url(host: HostModel) -> str:
    return f"https://{host.address}:{host.settings.etcd.client_port}"


def local_url(host: HostModel) -> str:
    """The member's own client port on the loopback, over TLS like every other (127.0.0.1 is in its SANs)."""
    return f"https://127.0.0.1:{host.settings.etcd.client_port}"


def peer_sans(inventory: Inventory) -> list[str]:
    """Every member's address, and 127.0.0.1 for a client on the member itself."""
    return [str(h.address) for h in inventory.group_members("etcd")] + ["127.0.0.1"]


def etcdctl(host: HostModel, endpoints: list[str] | None = None, timeout: str = "3s") -> str:
    """etcdctl over TLS with the client certificate this stage puts on every member."""
    e = host.settings.etcd
    endpoints = endpoints or [client_url(host)]
    return (f"ETCDCTL_API=3 etcdctl --endpoints={shlex.quote(','.join(endpoints))} "
            f"--cacert={shlex.quote(e.cert_dir + '/ca.pem')} --cert={shlex.quote(e.cert_dir + '/client.pem')} "
            f"--key={shlex.quote(e.cert_dir + '/client-key.pem')} --command-timeout={timeout}")


def local_health(host: HostModel, key: str = "local_health") -> probes.Probe:
    """Whether this member answers healthy on its own client port (True/False)."""
    return probes.Probe(key, f"{etcdctl(host, [local_url(host)])} endpoint health >/dev/null 2>&1 && echo healthy; "
                        "true", lambda text: text.strip() == "healthy")


# -- on the ops host: the certificates ------------------------------------------------------------------

def cert_paths(host: HostModel) -> dict[str, str]:
    """Where the CA keeps what it issued for etcd, under its own folder (as the tutorial's /opt/certs)."""
    d = host.settings.ca.dir
    return {"ca.pem": f"{d}/ca.pem", f"{PEER}.pem": f"{d}/{PEER}.pem", f"{PEER}-key.pem": f"{d}/{PEER}-key.pem",
            f"{CLIENT}.pem": f"{d}/{CLIENT}.pem", f"{CLIENT}-key.pem": f"{d}/{CLIENT}-key.pem"}


def certs_wanted(host: HostModel) -> list[str]:
    """What the certificates' step reads on the ops host: the CA, what it issued for etcd, the extra CAs."""
    ca_paths = ca.paths(host.settings.ca)
    return [ca_paths[ca.CERT], ca_paths[ca.KEY], ca_paths[ca.CONFIG], *cert_paths(host).values(),
            *host.settings.ca.extra_trusted_cas]


def decide_certs_step(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    if ca.extra_trusted(host, facts["contents"]):
        notes.append(ca.roll_note(host, "the members"))
    return decide_certs(host, ctx.inventory, facts["contents"], notes, ctx.renewal)


def hand_certs(host: HostModel, before: Facts, after: Facts, ctx: RunContext) -> dict:
    """The PEMs for the members' step, read back after issuing: in memory only, for this run, never written to
    this machine's disk. "fresh": issued in this run (or, in a dry run, to be), so that the members' plans
    describe them the same way in both."""
    found = after["contents"]
    handed = {name: found.get(path) for name, path in cert_paths(host).items()}
    handed["ca.pem"] = ca.trust_bundle(handed["ca.pem"], ca.extra_trusted(host, found))
    fresh = bool(decide_certs(host, ctx.inventory, before["contents"], [], ctx.renewal))
    return {HANDOFF: {**handed, "fresh": fresh}}


def decide_certs(host: HostModel, inventory: Inventory, found: dict[str, bytes | None],
                 notes: list[str], renewal: Renewal = Renewal()) -> list[Change]:
    """The peer certificate for every member's address and the client certificate, issued unless current."""
    return (ca.decide_issue(host, found, PEER, "peer", "k8s-etcd", peer_sans(inventory), notes, owner=True,
                            renewal=renewal)
            + ca.decide_issue(host, found, CLIENT, "client", "k8s-node", [], notes, owner=True, renewal=renewal))


# -- on each member: etcd ----------------------------------------------------------------------------

def env_file(host: HostModel, inventory: Inventory, layout) -> DesiredFile:
    e = host.settings.etcd
    members = inventory.group_members("etcd")
    content = render("etcd/etcd.env.j2", name=member_name(host), data_dir=e.data_dir, address=str(host.address),
                     peer_port=e.peer_port, client_port=e.client_port, token=e.cluster_token,
                     initial_cluster=",".join(f"{member_name(m)}={peer_url(m)}" for m in members),
                     quota_backend_bytes=e.quota_backend_bytes, cert_dir=e.cert_dir, enable_v2=e.enable_v2)
    return DesiredFile(layout.env_file, content)


def cert_files(host: HostModel, certs: dict[str, bytes | None], user: str) -> list[DesiredFile]:
    """The certificates as the ops host has them; None where they are issued only in this run (dry run)."""
    d = host.settings.etcd.cert_dir
    return [DesiredFile(f"{d}/{name}", certs[name], mode="600" if is_key else "644", owner=user if is_key else "root",
                        group=user if is_key else "root", sensitive=is_key)
            for name, is_key in CERT_FILES.items() if certs.get(name) is not None]


def cluster_probe(host: HostModel, inventory: Inventory) -> probes.Probe:
    """The cluster as the other members see it, over TLS: each endpoint's health and the member list."""
    others = [client_url(m) for m in inventory.group_members("etcd") if m.name != host.name]
    ask = etcdctl(host, others)
    script = (f"echo health; {ask} endpoint health -w json 2>/dev/null; echo; "
              f"echo members; {ask} member list -w json 2>/dev/null; echo")

    def parse(text: str) -> dict:
        health_text, _, members_text = text.partition("\nmembers\n")
        health_text = health_text.removeprefix("health\n")
        try:
            healthy_urls = [e.get("endpoint") for e in json.loads(health_text.strip() or "[]") if e.get("health")]
        except ValueError:
            healthy_urls = []
        try:
            members = json.loads(members_text.strip() or "{}").get("members") or []
        except ValueError:
            members = []
        # A member that never started has no name in the list yet (a fresh cluster's last member, or one whose
        # restore failed): it is known by its peer URL.
        by_peer = {peer_url(m): member_name(m) for m in inventory.group_members("etcd")}

        def name_of(m: dict) -> str:
            return m.get("name") or next((by_peer[u] for u in m.get("peerURLs") or [] if u in by_peer), "")
        return {"healthy_others": len(healthy_urls), "others": len(others), "healthy_urls": healthy_urls,
                "members": {name_of(m): m for m in members},
                "ids": {name_of(m): format(int(m["ID"]), "x") for m in members if "ID" in m}}
    return probes.Probe("cluster", script, parse)


def stage_probes(host: HostModel, inventory: Inventory, certs: dict[str, bytes | None],
                 family: str | None = None) -> list[probes.Probe]:
    e = host.settings.etcd
    layouts = [ETCD[pl.family] for pl in candidate_platforms(family)]
    candidates = [[env_file(host, inventory, layout), *cert_files(host, certs, layout.user)] for layout in layouts]
    paths = sorted({w.path for files in candidates for w in files}
                   | {f"{e.cert_dir}/{n}" for n in CERT_FILES} | {layout.env_file for layout in layouts})
    return [probes.os_info(), probes.packages(candidate_packages(e.packages, family)),
            probes.services(["etcd"]), probes.files(paths, read_unless=wanted_digests(*candidates), sensitive=True),
            probes.paths_exist([e.cert_dir, e.data_dir.rsplit("/", 1)[0] or "/", f"{e.data_dir}/member", REJOIN_DROPIN]),
            local_health(host),
            cluster_probe(host, inventory)]


def decide(host: HostModel, inventory: Inventory, facts: Facts, certs: dict[str, bytes | None] | None,
           notes: list[str]) -> list[Change]:
    """Install etcd, its certificates and configuration, then (re)start it the way the cluster allows."""
    e = host.settings.etcd
    platform = platform_for(facts["os"])
    layout = ETCD[platform.family]
    if certs is None:  # the CA's host is not in this run (--host, --group, --rerun-failed)
        ops = inventory.ops_host.name
        if any(facts["files"].get(f"{e.cert_dir}/{n}") is None for n in CERT_FILES):
            raise StageError(f"the etcd certificates come from the CA on {ops}, which is not in this run, and "
                             f"{host.name} has none yet: run with it too (add --host {ops})")
        notes.append(f"certificates kept as they are: the CA's host {ops} is not in this run")
        certs = {}
    install = install_missing(platform, e.packages.get(platform.family, []), facts["packages"])
    plan: list[Change] = list(install)
    plan += create_directories([e.cert_dir], facts["paths"], summary=f"create {e.cert_dir}")
    # etcd makes its data directory itself, 0700 as it wants it, inside a parent of its own.
    parent = e.data_dir.rsplit("/", 1)[0] or "/"
    plan += create_directories([parent], facts["paths"], owner=layout.user, summary=f"create {parent} for etcd")
    cluster = facts["cluster"]
    # The others hold a majority of the cluster without this member: it may restart, and must wait for them.
    quorum = cluster["healthy_others"] >= quorum_of_others(cluster["others"])
    wanted_certs = cert_files(host, certs, layout.user)
    if certs and quorum and not _peers_trust_the_ca(host, facts, certs, notes):
        # A CA roll's first step: this member trusts the new CA beside the old one before any member moves.
        wanted_certs = [w for w in wanted_certs if w.path == f"{e.cert_dir}/ca.pem"]
        certs = {"ca.pem": certs["ca.pem"]}
    if certs.get("fresh"):
        # New keys are made when the plan is applied: the plan names them rather than their digests, the same
        # in the dry run and in the run that issues them.
        def install(r: Remote, files: tuple[DesiredFile, ...] = tuple(wanted_certs)) -> None:
            for w in files:
                r.write_file(w.path, w.content, mode="0" + w.mode, owner=w.owner, group=w.group, sensitive=w.sensitive)
        plan.append(ActionChange(f"install the etcd certificates issued in this run under {e.cert_dir}",
                                 "".join(value_diff(f"{e.cert_dir}/{n}", None, "from the CA on the ops host"
                                                    + (", etcd's 0600 (content never shown)" if is_key else ""))
                                         for n, is_key in CERT_FILES.items()), install))
        wanted_certs = []
    plan += file_changes([env_file(host, inventory, layout), *wanted_certs], facts["files"])

    name = member_name(host)
    listed = cluster["members"].get(name)
    ran_before = bool(listed and listed.get("clientURLs"))  # a member that never started has published none
    has_data = f"{e.data_dir}/member" in facts["paths"]
    # Taken out of the cluster (remove-host) and back in the inventory: its data is of a membership the
    # cluster ended, and etcd would refuse to start on it. It is kept aside and the member joins anew.
    left = quorum and has_data and bool(cluster["members"]) and listed is None
    rejoin = quorum and (not has_data or left)
    if left:
        data, aside = shlex.quote(e.data_dir), shlex.quote(f"{e.data_dir}.left-cluster")
        plan.append(CommandChange(
            f"stop etcd and keep the data of its earlier membership aside as {e.data_dir}.left-cluster[.N]",
            ["systemctl stop etcd", f"a={aside}; n=1; while [ -e \"$a\" ]; do n=$((n+1)); a={aside}.$n; done; "
                                    f"mv {data} \"$a\""],
            value_diff(e.data_dir, "data of a membership the cluster removed", "kept aside; the member joins anew")))
    if rejoin:
        # Without data while the others hold the cluster: take it out (a member new to the cluster is only
        # added) and add it again, so that it joins as a member of the existing cluster and is sent the
        # leader's snapshot. Bootstrapped anew instead, a member listed since the cluster formed (or since a
        # restore) would replay only the log and miss every key a restore put in the others' stores.
        plan.append(_rejoin(host, inventory, cluster["ids"].get(name) if listed else None))
        notes.append(f"{name} was removed from the cluster: its old data kept aside, added again" if left
                     else f"{name} had lost its data: removed from the cluster and added again" if ran_before
                     else f"{name} had never started: removed from the cluster and added again" if listed
                     else f"{name} is new to the cluster: added to it")
    if plan or not facts["services"].settled(layout.service) or not facts["local_health"]:
        # The last member of a cluster that is forming completes its quorum: it waits for the whole cluster.
        last = order_hosts(inventory.group_members("etcd"))[-1].name == host.name
        # A healthy member of the cluster as it stands (two members, or one joining that is not started yet)
        # restarts and waits until it and the members healthy before it are healthy again.
        rolling = bool(listed) and facts["local_health"] and not rejoin and not quorum
        wait_on = [client_url(host), *cluster.get("healthy_urls", [])] if rolling else None
        # Without certificates of its own the host could not ask the others anything: whether they hold a
        # cluster it joins, or are forming one with it, shows only once this plan has installed them.
        blind = bool(certs) and not has_data and not quorum and not any(
            facts["files"].get(f"{e.cert_dir}/{n}") for n in CERT_FILES)
        if blind:
            notes.append(f"{name} has no certificates yet to ask the other members with: it joins their cluster "
                         "when a quorum of them answers once its certificates are in, else forms it with them")
            plan.append(_join_or_form(host, inventory, layout.service, last))
        else:
            plan.append(_activation(host, inventory, layout.service, wait_for_cluster=quorum or last or rolling,
                                    rejoin=rejoin, wait_on=wait_on))
    else:
        notes.append(f"{name} healthy, {cluster['healthy_others']} of {cluster['others']} other member(s) healthy")
    return plan


def _peers_trust_the_ca(host: HostModel, facts: Facts, certs: dict[str, bytes | None], notes: list[str]) -> bool:
    """Whether this member may move to certificates of the CA now: its peers, which trust what this member
    trusts today, trust the CA. When not, but the CAs handed over still trust the member's current certificate
    (ca.extra_trusted_cas names the old CA), the member takes the new trust first (False). Otherwise the
    move would cut it off from its peers: refused, nothing changed."""
    e = host.settings.etcd
    wanted = pki.certificates_in(certs.get("ca.pem"))
    trusted_now = pki.certificates_in(probes.content_on_host(facts["files"], f"{e.cert_dir}/ca.pem",
                                                             certs.get("ca.pem")))
    if not wanted or not trusted_now:
        return True  # a new member, or nothing handed over
    the_ca = wanted[0]
    if pki.fingerprint(the_ca) in {pki.fingerprint(c) for c in trusted_now}:
        return True
    current_leaf = probes.content_on_host(facts["files"], f"{e.cert_dir}/{PEER}.pem", certs.get(f"{PEER}.pem"))
    if pki.issued_by_one_of(current_leaf, wanted) is not None:
        notes.append(f"CA roll: {member_name(host)} trusts the new CA {pki.fingerprint(the_ca)} beside the old one "
                     "first, keeping its certificates; run again to move it to the new CA's certificates")
        return False
    raise StageError(
        f"{member_name(host)} would move to certificates of a CA its peers do not trust yet (they trust "
        f"{', '.join(pki.fingerprint(c) for c in trusted_now)}; the CA is now {pki.fingerprint(the_ca)}): nothing "
        "was changed. Roll the CA: list the previous CA's certificate in ca.extra_trusted_cas (replace_ca.py "
        f"keeps it as {host.settings.ca.dir}/replaced-<time>/ca.pem), run twice, then remove it and run once "
        "more (README: Rolling a new CA)")


def _rejoin(host: HostModel, inventory: Inventory, member_id: str | None) -> CommandChange:
    """Remove the member (when the cluster still lists it) and add it again; the next start joins the
    existing cluster (a runtime drop-in, gone after the start and at reboot)."""
    others = [client_url(m) for m in inventory.group_members("etcd") if m.name != host.name]
    ask = etcdctl(host, others)
    # etcd refuses a member (unhealthy cluster) until its leader has heard from a quorum for 5 s: members that
    # have just restarted (a host being added changes their configuration) make it wait that long.
    add = f"{ask} member add {shlex.quote(member_name(host))} --peer-urls={shlex.quote(peer_url(host))}"
    commands = ([f"{ask} member remove {member_id}"] if member_id else []) + [
        wait_until(add, 30, f"the cluster did not take {member_name(host)} as a member", interval=2),
        f"mkdir -p {shlex.quote(REJOIN_DROPIN.rsplit('/', 1)[0])} && printf '[Service]\\n"
        f"Environment=ETCD_INITIAL_CLUSTER_STATE=existing\\n' > {shlex.quote(REJOIN_DROPIN)} && systemctl daemon-reload"]
    return CommandChange(f"add {member_name(host)} to the cluster again", commands,
                         value_diff(f"member {member_name(host)}", "data lost" if member_id else "not a member",
                                    "a member again, joining the existing cluster"))


def quorum_of_others(others: int) -> int:
    """How many of a member's `others` must be healthy for the cluster to hold its quorum without it."""
    return (others + 1) // 2 + 1


def _join_or_form(host: HostModel, inventory: Inventory, service: str, last: bool) -> CommandChange:
    """Decided on the host, with the certificates this plan installed: a quorum of the other members healthy
    and this member not in their list means a running cluster (a host added to the etcd group), which it joins
    (member add) before it starts and waits for the whole cluster. Otherwise it starts as one of the members
    the cluster was formed with (the others' list names it, started or not), or forms the cluster with them."""
    others = [client_url(m) for m in inventory.group_members("etcd") if m.name != host.name]
    needed = quorum_of_others(len(others))
    ask = etcdctl(host, others)
    running = (f"[ \"$({ask} endpoint health 2>&1 | grep -c ' is healthy')\" -ge {needed} ] && "
               f"! {ask} member list 2>/dev/null | grep -qF {shlex.quote(peer_url(host) + ',')}")
    restart = _activation(host, inventory, service, True, rejoin=True)
    join = [*_rejoin(host, inventory, None).commands, *restart.commands]
    form = _activation(host, inventory, service, wait_for_cluster=last).commands
    script = (f"if {running}; then {' && '.join(f'( {c} )' for c in join)}; "
              f"else {' && '.join(f'( {c} )' for c in form)}; fi")
    return CommandChange(f"join the cluster when {needed} of the other members answer, else form it with them",
                         [script],
                         value_diff(f"member {member_name(host)}", "not running",
                                    "a member of the running cluster, or of the one forming"),
                         undo_files_on_failure=True, recover=restart.recover, timeout=WAIT_SECONDS + 60,
                         pending=service)


def _activation(host: HostModel, inventory: Inventory, service: str, wait_for_cluster: bool,
                rejoin: bool = False, wait_on: list[str] | None = None) -> CommandChange:
    """A cluster with quorum: restart this member and wait until the whole cluster (or the members wait_on
    names) is healthy, so that the next member restarts only then. A cluster not formed yet: start without
    waiting for the others."""
    unit = shlex.quote(service)
    everyone = wait_on or [client_url(m) for m in inventory.group_members("etcd")]
    healthy = wait_until(f"{etcdctl(host, everyone)} endpoint health >/dev/null 2>&1", WAIT_SECONDS,
                         "the etcd cluster is not healthy after the restart", diagnose=journal_tail(service))
    started = wait_until(f"systemctl is-active --quiet {unit} || [ \"$(systemctl is-active {unit})\" = activating ]",
                         10, "etcd did not start", diagnose=journal_tail(service))
    drop_rejoin = f"rm -f {shlex.quote(REJOIN_DROPIN)} && systemctl daemon-reload"
    if wait_for_cluster:
        return CommandChange("restart etcd and wait until the cluster is healthy",
                             [f"systemctl enable {unit} >/dev/null 2>&1; systemctl restart {unit}", healthy,
                              *([drop_rejoin] if rejoin else [])],
                             value_diff("etcd", "previous configuration", "running, the cluster healthy"),
                             undo_files_on_failure=True,
                             recover=[f"systemctl is-active --quiet {unit} || systemctl restart {unit}"],
                             timeout=WAIT_SECONDS + 30, pending=service)
    return CommandChange("start etcd (the cluster forms once a quorum of members runs)",
                         [f"systemctl enable {unit} >/dev/null 2>&1; systemctl restart --no-block {unit}", started],
                         value_diff("etcd", "not running", "started, joining the cluster as it forms"), pending=service)


CERTS = Stage(name="etcd_certs", title="etcd's certificates from the CA", groups=("ops",), checks="test_etcd.py",
              needs=("host_prep", "ca"),
              select=lambda host, inventory: bool(inventory.group_members("etcd")),
              probes=lambda host, ctx: [probes.contents(certs_wanted(host), sensitive=True)],
              read_secrets=lambda host, facts, ctx: pki.key_texts(facts["contents"]),
              decide=decide_certs_step, hand_off=hand_certs)
MEMBERS = Stage(name="etcd", title="etcd cluster, one member at a time", groups=("etcd",), serial=True,
                needs=("host_prep", "time_sync", "etcd_certs"), installs=lambda host: host.settings.etcd.packages,
                handed_secrets=lambda host, ctx: pki.key_texts(ctx.handoff.get(HANDOFF) or {}),
                probes=lambda host, ctx: stage_probes(host, ctx.inventory, ctx.handoff.get(HANDOFF) or {},
                                                      ctx.family(host.name)),
                notes=lambda host, ctx: [f"{member_name(host)} at {peer_url(host)}"],
                decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts, ctx.handoff.get(HANDOFF),
                                                              notes))
STAGES = [CERTS, MEMBERS]
