"""The operator's way in: kubectl (the distribution's kubernetes-client) and an admin kubeconfig on the ops host,
0600, with the admin certificate (group system:masters) embedded, through the VIP."""

from __future__ import annotations

from groundwork import facts as probes
from groundwork.changes import Change, DesiredFile, StageError, StageReport, apply_plan, create_directories
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.remote import Remote
from groundwork.stages import Stage
from groundwork.tasks.kubernetes import (ADMIN, deliver, handed_pems, k8s_stage_applies, kubeconfig, mask_keys,
                                         vip_server)


def desired(host: HostModel, inventory: Inventory, pems: dict[str, bytes]) -> DesiredFile:
    k = host.settings.kubernetes
    content = kubeconfig(vip_server(inventory), "admin", pems["ca.pem"], pems[f"{ADMIN.name}.pem"],
                         pems[f"{ADMIN.name}-key.pem"])
    return DesiredFile(k.admin_kubeconfig, content, mode="600", sensitive=True)


def decide(host: HostModel, inventory: Inventory, facts: Facts, pems: dict[str, bytes] | None,
           fresh: bool) -> list[Change]:
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
    plan += deliver([desired(host, inventory, pems)], fresh, facts["files"], "the admin kubeconfig")
    return plan


def run(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
    pems, fresh = handed_pems(ctx.handoff, [ADMIN.name])
    if pems:
        mask_keys(remote, pems)
    k = host.settings.kubernetes
    kubectl = candidate_packages(k.kubectl_packages, ctx.family(host.name))
    facts = remote.gather([probes.os_info(), probes.packages(kubectl),
                           probes.files([k.admin_kubeconfig], read_unless={}, sensitive=True),
                           probes.paths_exist([k.admin_kubeconfig.rsplit("/", 1)[0] or "/"])])
    report = StageReport(notes=[f"kubectl --kubeconfig {k.admin_kubeconfig} reaches {vip_server(ctx.inventory)}"])
    return apply_plan(remote, decide(host, ctx.inventory, facts, pems, fresh), ctx, report)


STAGE = Stage(name="k8s_admin", title="kubectl and the admin kubeconfig on the ops host", groups=("ops",), run=run,
              select=k8s_stage_applies, checks="test_kubernetes.py")
