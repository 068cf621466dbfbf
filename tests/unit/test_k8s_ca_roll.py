"""A new CA rolled through Kubernetes with both CAs trusted (README: Rolling a new CA), as the masters', nodes'
and ops host's decisions see it: a host on the old CA first trusts both and keeps its certificates, then moves
to the new CA's, then trusts the new CA only; a host whose certificates are from a CA not handed over is
refused with nothing changed. The files are the hosts' as the plans leave them."""

import hashlib
import tempfile
from pathlib import Path

import pytest

from groundwork import pki
from groundwork.changes import StageError
from groundwork.facts import FileInfo, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.settings import Ca
from groundwork.tasks import ca, k8s_admin, k8s_certs, k8s_control_plane, k8s_node
from groundwork.tasks.kubernetes import kubeconfig_parts
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
OPS, MASTER = INVENTORY.ops_host, INVENTORY.hosts["hdss7-21"]


class Writer:
    """A host's files as the plan's actions write them."""
    class masker:
        @staticmethod
        def add(_):
            pass

    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def write_file(self, path, content, **_):
        self.files[path] = content


def issued_by(made: pki.CaFiles) -> dict[str, bytes]:
    """Every certificate of the cluster from this CA, by file name, as k8s_certs hands them over."""
    d = OPS.settings.ca.dir
    found = {path: None for path in k8s_certs.files_of(OPS, INVENTORY).values()}
    found |= {f"{d}/ca.pem": made.cert_pem, f"{d}/ca-key.pem": made.key_pem, f"{d}/ca-config.json": None,
              f"{d}/client.pem": b"etcd client"}
    plan, _ = k8s_certs.decide(OPS, INVENTORY, found, [])
    for change in plan:
        change.action(Writer(found))
    etcd_ca = pki.load_ca_pair(made.cert_pem, made.key_pem)
    found[f"{d}/client.pem"], found[f"{d}/client-key.pem"] = pki.issue(*etcd_ca, "client", "k8s-node", [], Ca())
    return {name: found[path] for name, path in k8s_certs.files_of(OPS, INVENTORY).items()}


@pytest.fixture(scope="module")
def cas():
    old, new = pki.make_ca(Ca()), pki.make_ca(Ca())
    return {"old": old, "new": new, "old_pems": issued_by(old), "new_pems": issued_by(new)}


def facts_of(files: dict[str, bytes], stage_services: tuple[str, ...]) -> dict:
    """What the gather would find on a host with these files, its services running and answering."""
    infos = {p: FileInfo(hashlib.sha256(c).hexdigest(), "600" if "kubeconfig" in p or "key" in p else "644",
                         "root", "root", content=c) for p, c in files.items()}
    dirs = {p.rsplit("/", 1)[0] for p in files} | {k8s_control_plane.AUDIT_DIR, k8s_node.ROOT_DIR}
    return {"files": _Files(infos), "paths": dirs, "answering": set(stage_services),
            "services": Services({s: ServiceInfo(True, "active", "enabled") for s in stage_services}),
            "os": DEBIAN, "packages": {}, "node": "registered", "images": {}, "later_answering": set()}


class _Files(dict):
    def get(self, path, default=None):
        return super().get(path, default)


def on_host(desired: dict[str, list]) -> dict[str, bytes]:
    return {w.path: w.content for group in desired.values() for w in group}


def applied(plan, files: dict[str, bytes]) -> dict[str, bytes]:
    files = dict(files)
    for change in plan:
        want = getattr(change, "want", None)
        if want is not None:
            files[want.path] = want.content
    return files


def written(plan) -> set[str]:
    return {c.want.path for c in plan if getattr(c, "want", None) is not None}


def bundle(*made: pki.CaFiles) -> bytes:
    return ca.trust_bundle(made[0].cert_pem, [m.cert_pem for m in made[1:]])


def handed(cas, pems: str, *trusted: str) -> dict[str, bytes]:
    return {**cas[pems], "ca.pem": bundle(*(cas[t] for t in trusted))}


def test_a_master_trusts_both_first_keeping_its_certificates_then_moves_then_drops_the_old_ca(cas):
    k = MASTER.settings.kubernetes
    files = on_host(k8s_control_plane.desired(MASTER, INVENTORY, cas["old_pems"]))
    services = k8s_control_plane.COMPONENTS
    both = handed(cas, "new_pems", "new", "old")

    notes: list[str] = []
    first = k8s_control_plane.decide(MASTER, INVENTORY, facts_of(files, services), both, False, notes)
    kubeconfigs = {f"{k.conf_dir}/kube-controller-manager.kubeconfig", f"{k.conf_dir}/kube-scheduler.kubeconfig"}
    assert written(first) == {f"{k.cert_dir}/ca.pem"} | kubeconfigs
    assert any("CA roll: hdss7-21 trusts the new CA" in n for n in notes), notes
    trusting = applied(first, files)
    assert trusting[f"{k.cert_dir}/ca.pem"] == both["ca.pem"]
    for path in kubeconfigs:
        before, after = kubeconfig_parts(files[path]), kubeconfig_parts(trusting[path])
        assert after["ca"] == both["ca.pem"] and (after["cert"], after["key"]) == (before["cert"], before["key"])
    assert all(trusting[p] == files[p] for p in files if p.endswith(".pem") and not p.endswith("/ca.pem"))
    assert {c.summary.split()[1] for c in first if c.summary.startswith("restart")} == set(services)

    second = k8s_control_plane.decide(MASTER, INVENTORY, facts_of(trusting, services), both, False, [])
    moved = applied(second, trusting)
    assert moved == on_host(k8s_control_plane.desired(MASTER, INVENTORY, both))
    assert moved[f"{k.cert_dir}/kube-apiserver.pem"] == cas["new_pems"]["kube-apiserver.pem"]

    only_new = handed(cas, "new_pems", "new")
    third = k8s_control_plane.decide(MASTER, INVENTORY, facts_of(moved, services), only_new, False, [])
    assert written(third) == {f"{k.cert_dir}/ca.pem"} | kubeconfigs
    assert applied(third, moved)[f"{k.cert_dir}/ca.pem"] == cas["new"].cert_pem


def test_a_node_and_the_admin_kubeconfig_trust_both_first_keeping_their_certificates(cas):
    k = MASTER.settings.kubernetes
    both = handed(cas, "new_pems", "new", "old")
    node_files = on_host(k8s_node.desired(MASTER, INVENTORY, cas["old_pems"]))
    notes: list[str] = []
    plan = k8s_node.decide(MASTER, INVENTORY, facts_of(node_files, k8s_node.SERVICES), both, False, None, "", notes)
    kubeconfigs = {f"{k.conf_dir}/kubelet.kubeconfig", f"{k.conf_dir}/kube-proxy.kubeconfig"}
    assert written(plan) == {f"{k.cert_dir}/ca.pem"} | kubeconfigs and "CA roll" in notes[0]
    # On a master, the control plane's step made ca.pem trust both earlier in the run: the kubelet's and
    # kube-proxy's kubeconfigs still trust the old CA only, so the node trusts first all the same.
    node_files[f"{k.cert_dir}/ca.pem"] = both["ca.pem"]
    plan = k8s_node.decide(MASTER, INVENTORY, facts_of(node_files, k8s_node.SERVICES), both, False, None, "", [])
    assert written(plan) == kubeconfigs
    kept = applied(plan, node_files)
    assert all(kubeconfig_parts(kept[p])["cert"] == kubeconfig_parts(node_files[p])["cert"] for p in kubeconfigs)

    admin = {OPS.settings.kubernetes.admin_kubeconfig: k8s_admin.desired(OPS, INVENTORY, cas["old_pems"]).content}
    plan = k8s_admin.decide(OPS, INVENTORY, facts_of(admin, ()),
                            both, False, notes)
    trusting = applied(plan, admin)[OPS.settings.kubernetes.admin_kubeconfig]
    assert kubeconfig_parts(trusting)["ca"] == both["ca.pem"]
    assert kubeconfig_parts(trusting)["cert"] == cas["old_pems"]["admin.pem"]
    moved = k8s_admin.decide(OPS, INVENTORY, facts_of({**admin, OPS.settings.kubernetes.admin_kubeconfig: trusting}, ())
                            , both, False, [])
    assert kubeconfig_parts(applied(moved, {})[OPS.settings.kubernetes.admin_kubeconfig])["cert"] == \
        cas["new_pems"]["admin.pem"]


@pytest.mark.parametrize("stage", ["control plane", "node", "admin"])
def test_moving_a_host_to_a_ca_the_others_do_not_trust_is_refused_with_the_way_to_roll_it(cas, stage):
    only_new = handed(cas, "new_pems", "new")
    with pytest.raises(StageError, match=r"would move to certificates of a CA the others do not trust yet .* "
                                         r"nothing was changed\. Roll the CA: list the previous CA's certificate "
                                         r"in ca\.extra_trusted_cas"):
        if stage == "control plane":
            files = on_host(k8s_control_plane.desired(MASTER, INVENTORY, cas["old_pems"]))
            k8s_control_plane.decide(MASTER, INVENTORY, facts_of(files, k8s_control_plane.COMPONENTS), only_new,
                                     False, [])
        elif stage == "node":
            files = on_host(k8s_node.desired(MASTER, INVENTORY, cas["old_pems"]))
            k8s_node.decide(MASTER, INVENTORY, facts_of(files, k8s_node.SERVICES), only_new, False, None, "", [])
        else:
            admin = {OPS.settings.kubernetes.admin_kubeconfig:
                     k8s_admin.desired(OPS, INVENTORY, cas["old_pems"]).content}
            k8s_admin.decide(OPS, INVENTORY, facts_of(admin, ()),
                             only_new, False, [])


def test_the_handed_trust_lists_the_ca_first_then_the_ones_still_trusted(cas):
    assert pki.certificates_in(bundle(cas["new"], cas["old"])) == (
        pki.certificates_in(cas["new"].cert_pem) + pki.certificates_in(cas["old"].cert_pem))
    assert bundle(cas["new"]) == cas["new"].cert_pem
