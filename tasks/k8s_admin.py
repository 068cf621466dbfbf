"""The operator's way in: kubectl (the distribution's kubernetes-client) and an admin kubeconfig on the ops host,
0600, with the admin certificate (group system:masters) embedded, through the VIP."""

from __future__ import annotations

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import Change, DesiredFile, StageError, create_directories, file_changes
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.stages import Stage
from groundwork.tasks.kubernetes import (ADMIN, deliver, handed_pems, k8s_stage_applies, kubeconfig,
                                         trust_first, vip_server)


def desired(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> DesiredFile:
    k = host.settings.kubernetes
    content = kubeconfig(vip_server(inventory), "admin", pems["ca.pem"], pems[f"{ADMIN.name}.pem"],
                         pems[f"{ADMIN.name}-key.pem"])
    return DesiredFile(k.admin_kubeconfig, content, mode="600", sensitive=True)


def decide(host: HostModel, inventory: Inventory, facts: Facts, pems: dict[str, bytes] | None,
           fresh: bool, notes: list[str]) -> list[Change]:
    k = host.settings.kubernetes
    platform = platform_for(facts["os"])
    plan: list[Change] = list(install_missing(platform, k.kubectl_packages.get(platform.family, []), facts["packages"]))
    if pems is None:  # the certificates' step did not run on this host in this run
        if facts["files"].get(k.admin_kubeconfig) is None:
            raise StageError(f"the admin certificate comes from the k8s_certs step on {host.name}, which did not run "
                             f"in this run: run runbooks/kubernetes.py --host {host.name}")
        return plan
    folder = k.admin_kubeconfig.rsplit("/", 1)[0] or "/"
    plan += create_directories([folder], facts["paths"], summary=f"create {folder}")
    wanted = desired(host, inventory, pems)
    trusting = trust_first(host, facts, pems, [], [wanted], notes)
    if trusting is not None:
        return plan + file_changes(trusting, facts["files"])
    return plan + deliver([wanted], fresh, facts["files"], "the admin kubeconfig")


def stage_probes(host: HostModel, ctx: RunContext) -> list[probes.Probe]:
    k = host.settings.kubernetes
    return [probes.os_info(), probes.packages(candidate_packages(k.kubectl_packages, ctx.family(host.name))),
            probes.files([k.admin_kubeconfig], read_unless={}, sensitive=True),
            probes.paths_exist([k.admin_kubeconfig.rsplit("/", 1)[0] or "/"])]


def handed(ctx: RunContext) -> tuple[dict[str, bytes] | None, bool]:
    return handed_pems(ctx.handoff, [ADMIN.name])


STAGE = Stage(name="k8s_admin", title="kubectl and the admin kubeconfig on the ops host", groups=("ops",),
              needs=("host_prep", "k8s_certs", "vip", "k8s_control_plane"),
              installs=lambda host: host.settings.kubernetes.kubectl_packages,
              select=k8s_stage_applies, checks="test_kubernetes.py",
              handed_secrets=lambda host, ctx: pki.key_texts(handed(ctx)[0] or {}), probes=stage_probes,
              notes=lambda host, ctx: [f"kubectl --kubeconfig {host.settings.kubernetes.admin_kubeconfig} reaches "
                                       f"{vip_server(ctx.inventory)}"],
              decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts, *handed(ctx), notes))
