"""What the Kubernetes stages share: the cluster's certificates, kubeconfigs, node names, images, and how
certificates the CA's host issued reach the hosts that use them.

The certificates (k8s_certs issues them on the ops host, beside the CA, as the tutorial's /opt/certs):

    kube-apiserver          server  the apiservers' serving certificate: every master, the VIP, the kubernetes
                                    Service's IP and names, 127.0.0.1
    apiserver-kubelet-client client the apiservers towards the kubelets (logs, exec), group system:masters
    kube-controller-manager client system:kube-controller-manager
    kube-scheduler          client  system:kube-scheduler
    service-account         client  its key signs and checks service account tokens (never the CA's key);
                                    issued again, it keeps its key
    kube-proxy-client       client  system:kube-proxy
    kubelet-NODE            peer    one per node: system:node:NODE in system:nodes (Node authorization), and
                                    the kubelet's serving certificate for the node's names
    admin                   client  the operator's, group system:masters; stays on the ops host

The apiservers reach etcd with the etcd stage's client certificate (CN k8s-node), as the tutorial does.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (ActionChange, Change, DesiredFile, StageError, activate_service, file_changes,
                                value_diff, wait_until, wanted_digests)
from groundwork.inventory import HostModel, Inventory
from groundwork.remote import Remote
from groundwork.settings import Kubernetes

HANDOFF = "kubernetes_certs"  # RunContext.handoff: {"pems": {file name: bytes}, "fresh": {cert names}}
ETCD_CLIENT = "client"  # the etcd stage's client certificate, which the apiservers present to etcd
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Cert:
    name: str  # NAME.pem and NAME-key.pem
    profile: str
    cn: str
    sans: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None
    keep_key: bool = False  # issued again, it certifies the same key (ca.decide_issue)


def node_name(host: HostModel) -> str:
    """The tutorial's --hostname-override: hdss7-21.host.com."""
    return host.fqdn


def as_kubelet(host: HostModel) -> str:
    """kubectl with the node's kubelet credentials, through the VIP (the Node authorizer lets it read its node)."""
    return (f"kubectl --kubeconfig {shlex.quote(host.settings.kubernetes.conf_dir + '/kubelet.kubeconfig')} "
            "--request-timeout=5s")


def as_admin(host: HostModel) -> str:
    """kubectl with the admin kubeconfig on the ops host."""
    return f"kubectl --kubeconfig {shlex.quote(host.settings.kubernetes.admin_kubeconfig)} --request-timeout=10s"


def node_ready(host: HostModel, since: str = "kubelet") -> str:
    """The node is Ready as its kubelet reported it since the unit `since` last started (the kubelet, or the
    container runtime it depends on), read with the kubelet's own credentials through the VIP (the Node
    authorizer lets a kubelet read its own node). A Ready reported before that restart does not count: with
    the controller-manager stopped too nothing marked it stale, and the kubelet's first report after the
    restart may still be NotReady."""
    fields = ('{.status.conditions[?(@.type=="Ready")].status} '
              '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')
    return (f"( started=$(date -d \"$(systemctl show -p ActiveEnterTimestamp --value {shlex.quote(since)})\" +%s) && "
            f"set -- $({as_kubelet(host)} get node {shlex.quote(node_name(host))} -o jsonpath={shlex.quote(fields)} 2>/dev/null) && "
            "[ \"$1\" = True ] && [ \"$(date -d \"$2\" +%s)\" -ge \"$started\" ] )")


def apiserver_sans(inventory: Inventory) -> list[str]:
    k = inventory.defaults.kubernetes
    names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{k.cluster_domain}"]
    masters = [str(h.address) for h in inventory.group_members("master_compute")]
    return [*names, "127.0.0.1", str(k.service_ip), str(inventory.lb_vip), *masters]


def control_plane_certs(inventory: Inventory) -> list[Cert]:
    return [Cert("kube-apiserver", "server", "k8s-apiserver", tuple(apiserver_sans(inventory))),
            Cert("apiserver-kubelet-client", "client", "kube-apiserver-kubelet-client", (), ("system:masters",)),
            Cert("kube-controller-manager", "client", "system:kube-controller-manager"),
            Cert("kube-scheduler", "client", "system:kube-scheduler"),
            # Its key signs the service account tokens: kept when it is issued again (a renewal, a CA roll), so
            # that the tokens made before stay good, as kubeadm never rotates sa.key.
            Cert("service-account", "client", "service-accounts", keep_key=True)]


def kubelet_cert(host: HostModel) -> Cert:
    return Cert(f"kubelet-{host.name}", "peer", f"system:node:{node_name(host)}",
                (node_name(host), str(host.address)), ("system:nodes",))


def node_certs(host: HostModel) -> list[Cert]:
    return [kubelet_cert(host), Cert("kube-proxy-client", "client", "system:kube-proxy")]


ADMIN = Cert("admin", "client", "admin", (), ("system:masters",))


def all_certs(inventory: Inventory) -> list[Cert]:
    nodes = inventory.group_members("master_compute")
    per_node = [kubelet_cert(h) for h in nodes]
    return [*control_plane_certs(inventory), *per_node, node_certs(nodes[0])[1], ADMIN] if nodes else [ADMIN]


def pem_files(cert_names: list[str]) -> list[str]:
    return [f for name in cert_names for f in (f"{name}.pem", f"{name}-key.pem")]


# -- images ----------------------------------------------------------------------------------------------

def pause_image(inventory: Inventory) -> str:
    reg, k = inventory.defaults.registry, inventory.defaults.kubernetes
    return f"{reg.name}/{reg.project}/pause:{k.pause_tag}"


def workload_image(inventory: Inventory) -> str:
    """A shell and an httpd (Debian's busybox-static), for the verification's DaemonSet."""
    reg = inventory.defaults.registry
    return f"{reg.name}/{reg.project}/busybox:static"


LABEL = "io.groundwork.source"  # on the images groundwork makes: sha256 of the binary each carries
IMAGES_HANDOFF = "kubernetes_images"  # RunContext.handoff: image -> its label in the registry, from k8s_images


def image_labels(images: list[str], key: str = "labels") -> probes.Probe:
    """Each image's groundwork label as the host's docker has it ("" unlabelled, "absent" not there)."""
    script = "; ".join(f"echo \"$(docker image inspect --format '{{{{index .Config.Labels \"{LABEL}\"}}}}' "
                       f"{shlex.quote(i)} 2>/dev/null || echo absent)\"" for i in images)
    return probes.Probe(key, script, lambda text: dict(zip(images, text.splitlines() + ["absent"] * len(images))))


# -- the controller's files --------------------------------------------------------------------------------

def expected_sha256(value: str, field: str) -> str:
    """The digest a setting gives: itself, or the first word of the checksum file it names."""
    if not value.startswith("/"):
        return value
    try:
        word = (Path(value).read_text().split() or [""])[0].lower()
    except OSError as exc:
        raise StageError(f"kubernetes.{field}: cannot read the checksum file {value}: {exc.strerror}") from None
    if len(word) != 64 or any(c not in "0123456789abcdef" for c in word):
        raise StageError(f"kubernetes.{field}: {value} does not start with a SHA-256")
    return word


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verified_file(k: Kubernetes, field: str) -> tuple[Path, str]:
    """The controller's file that setting `field` names and its SHA-256, after checking it against the one the
    inventory gives."""
    path = Path(getattr(k, field))
    try:
        st = path.stat()
    except OSError as exc:
        raise StageError(f"kubernetes.{field}: {path}: {exc.strerror}") from None
    want = expected_sha256(getattr(k, f"{field}_sha256"), f"{field}_sha256")
    have = _file_sha256(str(path), st.st_size, st.st_mtime_ns)
    if have != want:
        raise StageError(f"kubernetes.{field}: {path} has SHA-256 {have}, but kubernetes.{field}_sha256 says "
                         f"{want}: nothing of it is delivered (a damaged or different file)")
    return path, have


# -- kubeconfigs -------------------------------------------------------------------------------------------

# libyaml's safe dumper and loader where PyYAML has them: the pure-Python ones spend 20 ms on each kubeconfig's
# long base64 lines, a third of a no-op run's CPU. They write and read the same text.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kubeconfig(server: str, user: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> bytes:
    """A kubeconfig with everything embedded (as `kubectl config set-cluster --embed-certs` makes it)."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "default",
           "clusters": [{"name": "kubernetes", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
           "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
           "contexts": [{"name": "default", "context": {"cluster": "kubernetes", "user": user}}]}
    return ("# Managed by groundwork (kubernetes); edits here are replaced on the next run.\n"
            + yaml.dump(doc, Dumper=_YAML_DUMPER, sort_keys=False)).encode()


def kubeconfig_parts(content: bytes | None) -> dict[str, str] | None:
    """server, user, and the embedded PEMs (ca, cert, key) of a kubeconfig as kubeconfig() writes it; None when
    it is not one."""
    try:
        doc = yaml.load(content or b"", Loader=_YAML_LOADER)
        cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]
        return {"server": cluster["server"], "user": user["name"],
                "ca": base64.b64decode(cluster["certificate-authority-data"]),
                "cert": base64.b64decode(user["user"]["client-certificate-data"]),
                "key": base64.b64decode(user["user"]["client-key-data"])}
    except (yaml.YAMLError, TypeError, KeyError, IndexError, ValueError):
        return None


def klog_errors(service: str) -> str:
    """A Kubernetes component's last error lines (klog's E and F), for a failed start's message."""
    return (f"journalctl -u {shlex.quote(service)} -n 300 --no-pager -q -o cat | grep -E '^[EF][0-9]{{4}} ' "
            "| cut -c1-400 | tail -n 3 >&2")


def vip_server(inventory: Inventory) -> str:
    return f"https://{inventory.lb_vip}:{inventory.defaults.lb.port}"


# -- certificates handed over from the ops host ------------------------------------------------------------

def handed_pems(handoff: dict, names: list[str]) -> tuple[dict[str, bytes] | None, bool]:
    """The PEMs (file name -> bytes, b"" where issued only in this dry run) of these certificates and the CA's,
    and whether any was issued in this run; None when the CA's host is not in this run."""
    handed = handoff.get(HANDOFF)
    if handed is None:
        return None, False
    pems = {f: handed["pems"].get(f) or b"" for f in [*pem_files(names), "ca.pem"]}
    return pems, any(n in handed["fresh"] for n in names)


def deliver(wanted: list[DesiredFile], fresh: bool, found_files: dict, what: str) -> list[Change]:
    """Changes that put files made from handed-over certificates in place. A certificate issued in this run is
    made when the plan is applied: the plan names the files rather than their digests, the same in the dry
    run and in the run that issues them."""
    if not fresh:
        return file_changes(wanted, found_files)

    def install(r: Remote, files: tuple[DesiredFile, ...] = tuple(wanted)) -> None:
        for w in files:
            r.write_file(w.path, w.content, mode="0" + w.mode, owner=w.owner, group=w.group, sensitive=w.sensitive)
    diff = "".join(value_diff(w.path, None, "from the CA on the ops host" + (", 0600 (content never shown)"
                                                                             if w.sensitive else "")) for w in wanted)
    return [ActionChange(f"install {what} issued in this run", diff, install)]


def cert_files(cert_dir: str, pems: dict[str, bytes], names: list[str]) -> list[DesiredFile]:
    """ca.pem and NAME.pem (0644), NAME-key.pem (0600, never shown) under cert_dir."""
    return [DesiredFile(f"{cert_dir}/{f}", pems[f], mode="600" if f.endswith("-key.pem") else "644",
                        sensitive=f.endswith("-key.pem"))
            for f in ["ca.pem", *pem_files(names)]]


def trust_first(host: HostModel, facts, pems: dict[str, bytes], certs: list[DesiredFile],
                kubeconfigs: list[DesiredFile], notes: list[str]) -> list[DesiredFile] | None:
    """A CA roll's first step on this host: when it does not trust the CA yet, the files that make it trust the
    CAs handed over (ca.pem among certs, and each kubeconfig's certificate-authority-data) while it keeps its
    certificates (the other certs, and the kubeconfigs' client pairs), so that every host trusts both CAs
    before any moves to the new one. None when it trusts the CA already, or lacks a file (it takes
    everything). StageError, nothing changed, when the CAs handed over do not list the CA its certificates are
    from: moved anyway, it would be cut off from the hosts still on that CA."""
    files = facts["files"]
    ca_file = next((w for w in certs if w.path.endswith("/ca.pem")), None)
    leaves = [w.path for w in certs if w is not ca_file and not w.sensitive]
    wanted = pki.certificates_in(pems.get("ca.pem"))
    kept = [kubeconfig_parts(probes.content_on_host(files, w.path, w.content)) for w in kubeconfigs]
    current = {path: probes.content_on_host(files, path, pems.get(path.rsplit("/", 1)[1])) for path in leaves}
    trust = probes.content_on_host(files, ca_file.path, ca_file.content) if ca_file is not None else b"-"
    if not wanted or None in kept or None in current.values() or trust is None:
        return None
    # What each part of the host trusts: ca.pem (which a master's control plane may have made trust both
    # already, earlier in this run) and every kubeconfig.
    trusts = [pki.certificates_in(t) for t in ([trust] if ca_file is not None else []) + [p["ca"] for p in kept]]
    if all(pki.fingerprint(wanted[0]) in {pki.fingerprint(c) for c in t} for t in trusts):
        return None
    current |= {f"{w.path} (its client certificate)": parts["cert"] for w, parts in zip(kubeconfigs, kept)}
    strangers = [path for path, pem in current.items() if pki.issued_by_one_of(pem, wanted) is None]
    if strangers:
        raise StageError(
            f"{host.name} would move to certificates of a CA the others do not trust yet ({', '.join(strangers)} "
            f"not issued by any CA handed over; the CA is now {pki.fingerprint(wanted[0])}): nothing was changed. "
            f"Roll the CA: list the previous CA's certificate in ca.extra_trusted_cas (replace_ca.py keeps it as "
            f"{host.settings.ca.dir}/replaced-<time>/ca.pem), run twice, then remove it and run once more "
            "(README: Rolling a new CA)")
    notes.append(f"CA roll: {host.name} trusts the new CA {pki.fingerprint(wanted[0])} beside the old one first, "
                 "keeping its certificates; run again to move it to the new CA's certificates")
    retrusted = [DesiredFile(w.path, kubeconfig(p["server"], p["user"], pems["ca.pem"], p["cert"], p["key"]),
                             mode=w.mode, sensitive=True) for w, p in zip(kubeconfigs, kept)]
    return ([ca_file] if ca_file is not None else []) + retrusted


def k8s_stage_applies(host: HostModel, inventory: Inventory) -> bool:
    return inventory.defaults.kubernetes.enabled and bool(inventory.group_members("master_compute"))


# -- the services the stages run ---------------------------------------------------------------------------

def service_probes(services: tuple[str, ...], files: list[DesiredFile], folders: list[str],
                   answers: dict[str, str]) -> list[probes.Probe]:
    """What a stage of Kubernetes services decides on: the units, its files (read only where they differ), its
    folders, and which services answer (answers: service -> a command that succeeds when it does)."""
    return [probes.services(list(services)),
            probes.files(sorted({w.path for w in files}), read_unless=wanted_digests(files), sensitive=True),
            probes.paths_exist(folders),
            probes.Probe("answering", "; ".join(f"{answers[s]} && echo {s}" for s in services) + "; true",
                         lambda text: set(text.split()))]


def certificates_kept(host: HostModel, inventory: Inventory, certs: list[DesiredFile], facts, what: str,
                      notes: list[str]) -> None:
    """When the CA's host is not in this run, the host keeps the certificates it has; StageError when it has none."""
    ops = inventory.ops_host.name
    if any(facts["files"].get(w.path) is None for w in certs):
        raise StageError(f"{what} come from the CA on {ops}, which is not in this run, and {host.name} has none yet: "
                         f"run with it too (add --host {ops})")
    notes.append(f"certificates kept as they are: the CA's host {ops} is not in this run")


def restarts(services: tuple[str, ...], changed: set[str], facts, waits: dict[str, list[str]],
             notes: list[str]) -> list[Change]:
    """Restart each service whose files changed, or that is down or not answering, waiting for it (waits:
    service -> commands) before the next; the plan's files go back when it does not come up."""
    plan: list[Change] = []
    for service in services:
        running = facts["services"].running(service)
        if service in changed or not facts["services"].settled(service) or service not in facts["answering"]:
            plan.append(activate_service(
                service, f"restart {service} and wait until it answers",
                value_diff(service, "running on its previous files" if running else "not running",
                           "running on the files above, answering"),
                start=f"systemctl daemon-reload; systemctl enable {service} >/dev/null 2>&1; systemctl restart {service}",
                waits=waits[service],
                recover=[f"systemctl daemon-reload; systemctl is-active --quiet {service} || systemctl restart {service}"],
                timeout=SERVICE_WAIT_SECONDS + 30))
        else:
            notes.append(f"{service} running and answering")
    return plan


SERVICE_WAIT_SECONDS = 90


def wait_for(service: str, test: str, failure: str) -> str:
    return wait_until(test, SERVICE_WAIT_SECONDS, failure, diagnose=klog_errors(service))
