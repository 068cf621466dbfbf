"""The nodes: kubelet and kube-proxy on every master_compute host, each through the VIP to the apiservers.

Each node holds the CA's certificate and its own kubelet pair (system:node:NODE in system:nodes, which the
Node authorizer reads; also the kubelet's serving certificate) under cert_dir; the kubelet's and kube-proxy's
kubeconfigs (certificates embedded, 0600, server https://VIP:7443) and configuration files under conf_dir.
The kubelet's cgroup driver is docker's (daemon.json). Before the kubelet starts, the node pulls the pause
and workload images from the registry with a throwaway login (no credential stays; the registry's
distribution backend serves no anonymous pulls), so the kubelet finds them there. A service restarts only
when one of its files changed or it is not running, and the stage waits until it answers.
"""

from __future__ import annotations

import shlex
from collections import defaultdict

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (ActionChange, Change, DesiredFile, create_directories,
                                file_changes, value_diff)
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.registry_client import registry_login
from groundwork.render import render
from groundwork.stages import Stage
from groundwork.tasks.k8s_control_plane import pod_cidr
from groundwork.tasks.kubernetes import (IMAGES_HANDOFF, as_kubelet, cert_files, certificates_kept, deliver, handed_pems,
                                         image_labels, k8s_stage_applies, kubeconfig, kubelet_cert,
                                         node_name, node_ready, pause_image, restarts, service_probes, trust_first,
                                         vip_server, wait_for, workload_image)

SERVICES = ("kubelet", "kube-proxy")
ROOT_DIR = "/data/kubelet"  # the tutorial's --root-dir
PROXY_CERT = "kube-proxy-client"
_EMPTY: dict = defaultdict(bytes)


def desired(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> dict[str, list[DesiredFile]]:
    """"certs": the certificate files; "kubeconfigs"; then each service's own files."""
    k = host.settings.kubernetes
    cert = kubelet_cert(host).name
    values = dict(k=k, address=str(host.address), node=node_name(host), pause_image=pause_image(inventory),
                  root_dir=ROOT_DIR, cert=cert, cgroup_driver=host.settings.docker.cgroup_driver,
                  pod_cidr=pod_cidr(host))
    server = vip_server(inventory)
    return {
        "certs": cert_files(k.cert_dir, pems, [cert]),
        "kubeconfigs": [
            DesiredFile(f"{k.conf_dir}/kubelet.kubeconfig", kubeconfig(
                server, f"system:node:{node_name(host)}", pems["ca.pem"], pems[f"{cert}.pem"], pems[f"{cert}-key.pem"]),
                mode="600", sensitive=True),
            DesiredFile(f"{k.conf_dir}/kube-proxy.kubeconfig", kubeconfig(
                server, "system:kube-proxy", pems["ca.pem"], pems[f"{PROXY_CERT}.pem"], pems[f"{PROXY_CERT}-key.pem"]),
                mode="600", sensitive=True)],
        "kubelet": [DesiredFile(f"{k.conf_dir}/kubelet-config.yaml", render("kubernetes/kubelet-config.yaml.j2", **values)),
                    DesiredFile("/etc/systemd/system/kubelet.service", render("kubernetes/kubelet.service.j2", **values))],
        "kube-proxy": [DesiredFile(f"{k.conf_dir}/kube-proxy-config.yaml",
                                   render("kubernetes/kube-proxy-config.yaml.j2", **values)),
                       DesiredFile("/etc/systemd/system/kube-proxy.service",
                                   render("kubernetes/kube-proxy.service.j2", **values))]}


def health(service: str) -> str:
    port = 10248 if service == "kubelet" else 10256
    return f"curl -sf --max-time 3 http://127.0.0.1:{port}/healthz >/dev/null"


def registered(host: HostModel) -> probes.Probe:
    """Whether the API has the node's object, as its kubelet's credentials read it: registered, absent (deleted,
    as remove-host does, while the kubelet ran on), or unknown (no answer)."""
    script = (f"out=$({as_kubelet(host)} get node {shlex.quote(node_name(host))} -o name 2>&1); "
              "case \"$out\" in node/*) echo registered;; *NotFound*|*'not found'*) echo absent;; *) echo unknown;; esac")
    return probes.Probe("node", script, str.strip)


def stage_probes(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> list[probes.Probe]:
    k = host.settings.kubernetes
    files = [w for group in desired(host, inventory, pems).values() for w in group]
    return [*service_probes(SERVICES, files, [k.cert_dir, k.conf_dir, ROOT_DIR], {s: health(s) for s in SERVICES}),
            image_labels([pause_image(inventory), workload_image(inventory)], key="images"), registered(host)]


def decide(host: HostModel, inventory: Inventory, facts: Facts, pems: dict[str, bytes] | None, fresh: bool,
           made: dict[str, str] | None, password: str, notes: list[str]) -> list[Change]:
    """made: image -> label of the images the ops host has in the registry (None: not known in this run)."""
    k = host.settings.kubernetes
    if pems is None:
        certificates_kept(host, inventory, desired(host, inventory, _EMPTY)["certs"], facts, "the node's certificates",
                          notes)
    files = desired(host, inventory, pems or _EMPTY)
    plan: list[Change] = create_directories([k.cert_dir, k.conf_dir, ROOT_DIR], facts["paths"],
                                            summary="create the node's folders")
    changed: set[str] = set()
    if pems is not None:
        trusting = trust_first(host, facts, pems, files["certs"], files["kubeconfigs"], notes)
        if trusting is not None:
            changes = file_changes(trusting, facts["files"])
        else:
            changes = deliver([*files["certs"], *files["kubeconfigs"]], fresh, facts["files"],
                              "the node's certificate and kubeconfigs")
        plan += changes
        touched = {getattr(getattr(c, "want", None), "path", None) for c in changes}
        if fresh and changes and trusting is None:
            changed |= set(SERVICES)
        changed |= {"kubelet"} if touched & {w.path for w in [*files["certs"], files["kubeconfigs"][0]]} else set()
        changed |= {"kube-proxy"} if files["kubeconfigs"][1].path in touched else set()
    for service in SERVICES:
        changes = file_changes(files[service], facts["files"])
        plan += changes
        changed |= {service} if changes else set()
    if facts["node"] == "absent" and facts["services"].running("kubelet"):
        # A kubelet registers its node when it starts: one whose node was deleted (a host taken out and added
        # again) runs on unregistered until restarted.
        notes.append(f"the node {node_name(host)} is not in the API: the kubelet restarts to register it")
        changed |= {"kubelet"}
    stale = [i for i, label in facts["images"].items()
             if label == "absent" or (made is not None and made.get(i) and label != made[i])]
    if stale:
        registry = inventory.defaults.registry.name
        pulls = registry_login(registry, " && ".join(f"docker pull -q {shlex.quote(i)} >/dev/null" for i in stale))
        plan.append(ActionChange(f"pull {', '.join(stale)} from {registry}", "".join(
            value_diff(i, None if facts["images"][i] == "absent" else "an older build", f"pulled from {registry}")
            for i in stale), lambda r: r.run(pulls, stdin=password.encode(), what="pulling the node's images")))
    waits = {s: [wait_for(s, health(s), f"{s} does not answer")] for s in SERVICES}
    waits["kubelet"].append(wait_for("kubelet", node_ready(host), f"the node {node_name(host)} is not Ready"))
    plan += restarts(SERVICES, changed, facts, waits, notes)
    return plan


def handed(host: HostModel, ctx: RunContext) -> tuple[dict[str, bytes] | None, bool]:
    return handed_pems(ctx.handoff, [kubelet_cert(host).name, PROXY_CERT])


STAGE = Stage(name="k8s_node", title="kubelet and kube-proxy on every node", groups=("master_compute",),
              needs=("host_prep", "resolver", "docker", "k8s_certs", "k8s_images", "k8s_binaries", "vip",
                     "k8s_control_plane", "pod_network"),
              select=k8s_stage_applies, secrets=frozenset({"registry_password"}), checks="test_kubernetes.py",
              handed_secrets=lambda host, ctx: pki.key_texts(handed(host, ctx)[0] or {}),
              probes=lambda host, ctx: stage_probes(host, ctx.inventory, handed(host, ctx)[0] or _EMPTY),
              notes=lambda host, ctx: [f"node {node_name(host)}, through {vip_server(ctx.inventory)}"],
              decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts, *handed(host, ctx),
                                                            ctx.handoff.get(IMAGES_HANDOFF),
                                                            ctx.secrets["registry_password"], notes))
