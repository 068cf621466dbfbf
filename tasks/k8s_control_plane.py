"""The control plane on every master (master_compute): kube-apiserver, kube-controller-manager and
kube-scheduler, run by systemd, one master at a time.

Each master holds the CA's certificate, the apiserver's serving pair, its client pair towards the kubelets, the
service account key and the etcd client pair under cert_dir; the controller-manager's and scheduler's
kubeconfigs (certificates embedded, 0600) and the audit policy under conf_dir. A component restarts only when
one of its files changed or it is not running; the stage then waits until it answers (the apiserver's /readyz
over TLS with the CA, the others' /healthz) before the next master's turn, so the API stays up through the VIP.
"""

from __future__ import annotations

import shlex
from collections import defaultdict

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (Change, DesiredFile, create_directories, file_changes)
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.render import render
from groundwork.stages import Stage
from groundwork.tasks import etcd
from groundwork.tasks.lb import BACKEND_FAIL_TIMEOUT
from groundwork.tasks.kubernetes import (ETCD_CLIENT, SA_ISSUER, cert_files, certificates_kept, control_plane_certs,
                                         deliver, handed_pems, k8s_stage_applies, kubeconfig, restarts,
                                         service_probes, trust_first, wait_for)

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
AUDIT_DIR = "/data/logs/kubernetes/kube-apiserver"
_EMPTY: dict = defaultdict(bytes)  # the files' paths when their certificates are not handed over in this run


def cert_names(inventory: Inventory) -> list[str]:
    """The pairs a master keeps as files (the controller-manager's and scheduler's live in their kubeconfigs)."""
    return [c.name for c in control_plane_certs(inventory) if c.name not in COMPONENTS[1:]] + [ETCD_CLIENT]


def pod_cidr(host: HostModel) -> str:
    return str(host.docker_bip.network.supernet(new_prefix=16))


def unit(name: str) -> str:
    return f"/etc/systemd/system/{name}.service"


def desired(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> dict[str, list[DesiredFile]]:
    """Component -> the files it reads ("certs": the certificates, which the apiserver reads)."""
    k = host.settings.kubernetes
    members = inventory.group_members("etcd")
    values = dict(k=k, address=str(host.address), port=host.settings.lb.backend_port, issuer=SA_ISSUER,
                  etcd_servers=",".join(etcd.client_url(m) for m in members), audit_dir=AUDIT_DIR,
                  pod_cidr=pod_cidr(host))
    local = f"https://127.0.0.1:{host.settings.lb.backend_port}"

    def own_kubeconfig(name: str) -> DesiredFile:
        content = kubeconfig(local, f"system:{name}", pems["ca.pem"], pems[f"{name}.pem"], pems[f"{name}-key.pem"])
        return DesiredFile(f"{k.conf_dir}/{name}.kubeconfig", content, mode="600", sensitive=True)
    return {"certs": cert_files(k.cert_dir, pems, cert_names(inventory)),
            "kube-apiserver": [DesiredFile(f"{k.conf_dir}/audit.yaml", render("kubernetes/audit.yaml.j2")),
                               DesiredFile(unit("kube-apiserver"), render("kubernetes/kube-apiserver.service.j2",
                                                                          **values))],
            "kube-controller-manager": [own_kubeconfig("kube-controller-manager"), DesiredFile(
                unit("kube-controller-manager"), render("kubernetes/kube-controller-manager.service.j2", **values))],
            "kube-scheduler": [own_kubeconfig("kube-scheduler"), DesiredFile(
                unit("kube-scheduler"), render("kubernetes/kube-scheduler.service.j2", **values))]}


def health(host: HostModel, component: str) -> str:
    k = host.settings.kubernetes
    if component == "kube-apiserver":
        return (f"curl -sf --max-time 3 --cacert {shlex.quote(k.cert_dir + '/ca.pem')} "
                f"https://127.0.0.1:{host.settings.lb.backend_port}/readyz >/dev/null")
    port = 10252 if component == "kube-controller-manager" else 10251
    return f"curl -sf --max-time 3 http://127.0.0.1:{port}/healthz >/dev/null"


def later_masters(host: HostModel, inventory: Inventory) -> list[str]:
    """The apiservers after this one in the L4 proxy's backends: the masters whose turn comes after this one's."""
    backends = [str(b) for b in inventory.lb_backends]
    return backends[backends.index(str(host.address)) + 1:] if str(host.address) in backends else []


def later_answering(host: HostModel, inventory: Inventory) -> probes.Probe:
    """Which of the later masters' apiservers answer now, seen from this master (-k: the question is whether
    anything serves there, which a master without the CA yet must be able to ask)."""
    port = host.settings.lb.backend_port
    script = "".join(f"[ \"$(curl -sk -o /dev/null --max-time 2 -w '%{{http_code}}' https://{a}:{port}/readyz)\" "
                     f"= 200 ] && echo {a}; " for a in later_masters(host, inventory)) + "true"
    return probes.Probe("later_answering", script, lambda text: set(text.split()))


def stage_probes(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> list[probes.Probe]:
    k = host.settings.kubernetes
    files = [w for group in desired(host, inventory, pems).values() for w in group]
    return [*service_probes(COMPONENTS, files, [k.cert_dir, k.conf_dir, AUDIT_DIR],
                            {c: health(host, c) for c in COMPONENTS}), later_answering(host, inventory)]


def decide(host: HostModel, inventory: Inventory, facts: Facts, pems: dict[str, bytes] | None, fresh: bool,
           notes: list[str]) -> list[Change]:
    k = host.settings.kubernetes
    if pems is None:
        certificates_kept(host, inventory, desired(host, inventory, _EMPTY)["certs"], facts,
                          "the control plane's certificates", notes)
    files = desired(host, inventory, pems or _EMPTY)
    plan: list[Change] = create_directories([k.cert_dir, k.conf_dir, AUDIT_DIR], facts["paths"],
                                            summary="create the control plane's folders")
    changed: set[str] = set()
    if pems is not None:
        # Everything made from a certificate: the certificates and the two kubeconfigs.
        kubeconfigs = [files["kube-controller-manager"][0], files["kube-scheduler"][0]]
        trusting = trust_first(host, facts, pems, files["certs"], kubeconfigs, notes)
        if trusting is not None:
            changes = file_changes(trusting, facts["files"])
        else:
            changes = deliver([*files["certs"], *kubeconfigs], fresh, facts["files"],
                              "the control plane's certificates and kubeconfigs")
        plan += changes
        touched = {getattr(getattr(c, "want", None), "path", None) for c in changes}
        if fresh and changes and trusting is None:
            changed |= set(COMPONENTS)
        changed |= {"kube-apiserver"} if touched & {w.path for w in files["certs"]} else set()
        # The controller-manager reads the CA (--root-ca-file) and the service account key from cert_dir too.
        changed |= {"kube-controller-manager"} if touched & {f"{k.cert_dir}/ca.pem",
                                                             f"{k.cert_dir}/service-account-key.pem"} else set()
        changed |= {c for c in COMPONENTS[1:] if files[c][0].path in touched}
    for component in COMPONENTS:
        own = [w for w in files[component] if w.path.startswith("/etc/systemd/") or w.path.endswith("audit.yaml")]
        changes = file_changes(own, facts["files"])
        plan += changes
        changed |= {component} if changes else set()
    waits = {c: [wait_for(c, health(host, c), f"{c} does not answer")] for c in COMPONENTS}
    # The controller-manager and scheduler lose their leader lease while this master's apiserver restarts, exit
    # and come back through systemd: those answering before answer again before the next master's turn.
    waits["kube-apiserver"] += [wait_for(c, health(host, c), f"{c} did not come back after the apiserver's restart")
                                for c in COMPONENTS[1:] if c in facts["answering"] and c not in changed]
    if facts["later_answering"]:
        # The L4 proxy leaves out for BACKEND_FAIL_TIMEOUT a backend that refused connections while it
        # restarted: a later master that serves now restarts only once this one is taken again, never with both
        # left out. Where none serves (a cold start), its start takes nothing out and there is nothing to wait for.
        waits["kube-apiserver"].append(f"sleep {BACKEND_FAIL_TIMEOUT}")
    return plan + restarts(COMPONENTS, changed, facts, waits, notes)


def handed(ctx: RunContext) -> tuple[dict[str, bytes] | None, bool]:
    return handed_pems(ctx.handoff, cert_names(ctx.inventory) + list(COMPONENTS[1:]))


STAGE = Stage(name="k8s_control_plane", title="apiserver, controller-manager and scheduler, one master at a time",
              needs=("host_prep", "etcd", "vip", "k8s_certs", "k8s_binaries"),
              groups=("master_compute",), select=k8s_stage_applies, serial=True, checks="test_kubernetes.py",
              handed_secrets=lambda host, ctx: pki.key_texts(handed(ctx)[0] or {}),
              probes=lambda host, ctx: stage_probes(host, ctx.inventory, handed(ctx)[0] or _EMPTY),
              notes=lambda host, ctx: [f"apiserver on {host.address}:{host.settings.lb.backend_port}"],
              decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts, *handed(ctx), notes))
