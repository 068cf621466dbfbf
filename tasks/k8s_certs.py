"""The cluster's certificates, issued by the CA on the ops host (the tutorial's /opt/certs), then handed in
memory to the Kubernetes stages of the masters and nodes (never through this machine's disk).

Each is issued unless the one there is current: signed by this CA, the same CN, groups, SANs and usages, and
30 days left (tasks/kubernetes.py lists them). A master added to master_compute changes the apiserver's SANs, so
it is issued again, and the masters then restart their apiservers on it one at a time.
"""

from __future__ import annotations

from groundwork import facts as probes
from groundwork.changes import Change, StageError, StageReport, apply_plan
from groundwork.context import RunContext
from groundwork.inventory import HostModel, Inventory
from groundwork.remote import Remote
from groundwork.stages import Stage
from groundwork.tasks import ca
from groundwork.tasks.kubernetes import ETCD_CLIENT, HANDOFF, all_certs, k8s_stage_applies, pem_files


def files_of(host: HostModel, inventory: Inventory) -> dict[str, str]:
    """File name -> path beside the CA, for every certificate the cluster uses (and the etcd client's)."""
    d = host.settings.ca.dir
    names = [c.name for c in all_certs(inventory)] + [ETCD_CLIENT]
    return {f: f"{d}/{f}" for f in ["ca.pem", *pem_files(names)]}


def decide(host: HostModel, inventory: Inventory, found: dict[str, bytes | None],
           notes: list[str]) -> tuple[list[Change], set[str]]:
    """The certificates to issue, and their names."""
    if not found.get(f"{host.settings.ca.dir}/{ETCD_CLIENT}.pem"):
        raise StageError(f"no etcd client certificate in {host.settings.ca.dir} on {host.name}: the apiservers "
                         "reach etcd with it; run the etcd stages first (runbooks/etcd.py)")
    plan: list[Change] = []
    issued = set()
    for c in all_certs(inventory):
        changes = ca.decide_issue(host, found, c.name, c.profile, c.cn, list(c.sans), notes, owner=True,
                                  groups=list(c.groups) if c.groups is not None else None)
        plan += changes
        issued |= {c.name} if changes else set()
    return plan, issued


def run(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
    ca_paths = ca.paths(host.settings.ca)
    files = files_of(host, ctx.inventory)
    wanted = [ca_paths[ca.CERT], ca_paths[ca.KEY], ca_paths[ca.CONFIG], *files.values()]
    found = remote.gather([probes.contents(wanted, sensitive=True)])["contents"]
    for path in wanted:
        if path.endswith("-key.pem") and found.get(path):
            remote.masker.add(found[path].decode(errors="replace"))
    report = StageReport()
    plan, issued = decide(host, ctx.inventory, found, report.notes)
    apply_plan(remote, plan, ctx, report)
    if plan and not ctx.dry_run:  # read back what was just issued, for the masters' and nodes' steps
        found = remote.gather([probes.contents(list(files.values()), sensitive=True)])["contents"]
        for path, pem in found.items():
            if path.endswith("-key.pem") and pem:
                remote.masker.add(pem.decode(errors="replace"))
    ctx.handoff[HANDOFF] = {"pems": {name: found.get(path) for name, path in files.items()}, "fresh": issued}
    return report


STAGE = Stage(name="k8s_certs", title="Kubernetes' certificates from the CA", groups=("ops",), run=run,
              select=k8s_stage_applies, checks="test_kubernetes.py")
