"""The cluster's certificates, issued by the CA on the ops host (the tutorial's /opt/certs), then handed in
memory to the Kubernetes stages of the masters and nodes (never through this machine's disk).

Each is issued unless the one there is current: signed by this CA, the same CN, groups, SANs and usages, and
30 days left (tasks/kubernetes.py lists them). A master added to master_compute changes the apiserver's SANs, so
it is issued again, and the masters then restart their apiservers on it one at a time.
"""

from __future__ import annotations

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import Change, StageError
from groundwork.context import Renewal, RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.stages import Stage
from groundwork.tasks import ca
from groundwork.tasks.kubernetes import ETCD_CLIENT, HANDOFF, all_certs, k8s_stage_applies, pem_files


def files_of(host: HostModel, inventory: Inventory) -> dict[str, str]:
    """File name -> path beside the CA, for every certificate the cluster uses (and the etcd client's)."""
    d = host.settings.ca.dir
    names = [c.name for c in all_certs(inventory)] + [ETCD_CLIENT]
    return {f: f"{d}/{f}" for f in ["ca.pem", *pem_files(names)]}


def decide(host: HostModel, inventory: Inventory, found: dict[str, bytes | None],
           notes: list[str], renewal: Renewal = Renewal()) -> tuple[list[Change], set[str]]:
    """The certificates to issue, and their names."""
    if not found.get(f"{host.settings.ca.dir}/{ETCD_CLIENT}.pem"):
        raise StageError(f"no etcd client certificate in {host.settings.ca.dir} on {host.name}: the apiservers "
                         "reach etcd with it; run the etcd stages first (runbooks/etcd.py)")
    plan: list[Change] = []
    issued = set()
    for c in all_certs(inventory):
        changes = ca.decide_issue(host, found, c.name, c.profile, c.cn, list(c.sans), notes, owner=True,
                                  groups=list(c.groups) if c.groups is not None else None, renewal=renewal,
                                  keep_key=c.keep_key)
        plan += changes
        issued |= {c.name} if changes else set()
    return plan, issued


def wanted(host: HostModel, inventory: Inventory) -> list[str]:
    ca_paths = ca.paths(host.settings.ca)
    return [ca_paths[ca.CERT], ca_paths[ca.KEY], ca_paths[ca.CONFIG], *files_of(host, inventory).values(),
            *host.settings.ca.extra_trusted_cas]


def hand_certs(host: HostModel, before: Facts, after: Facts, ctx: RunContext) -> dict:
    """The PEMs for the masters' and nodes' steps, read back after issuing (in memory, this run only), and the
    names issued in this run (or, in a dry run, to be). Their ca.pem holds the CAs trusted during a roll too."""
    _, issued = decide(host, ctx.inventory, before["contents"], [], ctx.renewal)
    found = after["contents"]
    pems = {name: found.get(path) for name, path in files_of(host, ctx.inventory).items()}
    pems["ca.pem"] = ca.trust_bundle(pems["ca.pem"], ca.extra_trusted(host, found))
    return {HANDOFF: {"pems": pems, "fresh": issued}}


def decide_step(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    if ca.extra_trusted(host, facts["contents"]):
        notes.append(ca.roll_note(host, "the masters, nodes and admin kubeconfig"))
    return decide(host, ctx.inventory, facts["contents"], notes, ctx.renewal)[0]


STAGE = Stage(name="k8s_certs", title="Kubernetes' certificates from the CA", groups=("ops",),
              needs=("host_prep", "ca"),
              select=k8s_stage_applies, checks="test_kubernetes.py",
              probes=lambda host, ctx: [probes.contents(wanted(host, ctx.inventory), sensitive=True)],
              read_secrets=lambda host, facts, ctx: pki.key_texts(facts["contents"]),
              decide=decide_step,
              hand_off=hand_certs)
