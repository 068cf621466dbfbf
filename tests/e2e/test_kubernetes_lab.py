"""Kubernetes v1.20 end to end on hdss7-21 and hdss7-22 with groundwork's own CA, etcd, registry and VIP: the
cluster green and a rerun that changes nothing, what a stopped apiserver and a stopped kubelet fail (and only
that), and a new CA rolled through etcd and Kubernetes one host at a time with the API answering."""

import time
from shlex import quote

from groundwork.inventory import load_inventory
from groundwork.tasks.etcd import CLIENT, PEER
from groundwork.tasks.kubernetes import all_certs
from tests.e2e.conftest import PROJECT, inventory_copy
from tests.e2e.test_etcd_lab import ETCDCTL

MASTERS = ("hdss7-21", "hdss7-22")
VIP = "10.4.7.10:7443"
KUBECTL = "kubectl --kubeconfig /root/.kube/config --request-timeout=5s"
K8S_STAGES = ("k8s_certs", "k8s_images", "k8s_binaries", "k8s_control_plane", "pod_network", "k8s_node", "k8s_admin")


def k8s_checks(run) -> list[tuple[str, str, str]]:
    """(host, check, outcome) of every Kubernetes check."""
    return [(c["host"], c["check"].split("::", 1)[1], c["outcome"]) for c in run.record["checks"] or []
            if c["check"].startswith("test_kubernetes.py")]


def failing(run) -> set[tuple[str, str]]:
    return {(host, check) for host, check, outcome in k8s_checks(run) if outcome != "passed"}


def test_the_cluster_comes_up_green_and_a_rerun_changes_nothing(converged, runbook):
    lab = converged
    nodes = lab.ssh("hdss7-200", f"{KUBECTL} get nodes --no-headers").splitlines()
    assert sorted((line.split()[0], line.split()[1]) for line in nodes) == [
        ("hdss7-21.host.com", "Ready"), ("hdss7-22.host.com", "Ready")]
    # The pause image came from the registry, by name (pulled by the node stage; a pod runs on it only once the
    # verification's canary does, which the converged run leaves out)
    assert "harbor.od.com/public/pause:3.2" in lab.ssh("hdss7-21", "docker images --format '{{.Repository}}:{{.Tag}}'")
    assert lab.ssh("hdss7-200", "stat -c '%a %U' /root/.kube/config").split() == ["600", "root"]
    for master in MASTERS:
        assert lab.ssh(master, "stat -c %a /opt/kubernetes/server/bin/cert/kube-apiserver-key.pem").strip() == "600"
        assert lab.ssh(master, "/opt/kubernetes/server/bin/kubelet --version").strip() == "Kubernetes v1.20.2"
    again = runbook()
    assert again.rc == 0, again
    for stage in K8S_STAGES:
        assert set(again.statuses(stage).values()) == {"ok"}, (stage, again)
    checks = k8s_checks(again)
    assert {outcome for *_, outcome in checks} == {"passed"} and len(checks) == 8 * len(MASTERS) + 4, checks
    vip = [c for c in again.record["checks"] if c["check"].endswith("test_a_connection_to_the_vip_reaches_an_apiserver")]
    assert {c["outcome"] for c in vip} == {"passed"}  # no longer skipped: an apiserver answers behind the VIP


def test_a_stopped_apiserver_and_kubelet_fail_their_own_checks_and_a_rerun_restores_both(converged, runbook):
    lab = converged
    # Green first, the canary's pods running on both nodes: on a fresh lab the converged run has none yet, and
    # a DaemonSet made while hdss7-22's kubelet is down could not start its pod there.
    first = runbook(name="verify")
    assert first.rc == 0, first
    lab.ssh("hdss7-21", "systemctl stop kube-apiserver")
    lab.ssh("hdss7-22", "systemctl stop kubelet")
    # The node controller marks hdss7-22 NotReady once its lease is 40 s old.
    deadline = time.monotonic() + 90
    while "NotReady" not in lab.ssh("hdss7-200", f"{KUBECTL} get node hdss7-22.host.com --no-headers", check=False):
        assert time.monotonic() < deadline, "hdss7-22 never became NotReady"
        time.sleep(3)
    checked = runbook(name="verify")
    assert checked.rc == 5, checked
    # Exactly these fail: hdss7-21's apiserver,
    # hdss7-22's kubelet and Readiness, and every-node-Ready on the ops host. The API still answers through the
    # VIP (the proxy passes to hdss7-22), hdss7-22's apiserver and kube-proxy are fine, and pods on both nodes
    # still reach each other and the ClusterIP.
    # (the controller-manager and scheduler on hdss7-21 may fail too, whichever was using the stopped apiserver)
    own = {("hdss7-21", "test_the_controller_manager_is_healthy"), ("hdss7-21", "test_the_scheduler_is_healthy")}
    assert failing(checked) - own == {("hdss7-21", "test_the_apiserver_answers_with_its_ca_signed_certificate"),
                                      ("hdss7-22", "test_the_kubelet_answers"),
                                      ("hdss7-22", "test_the_node_is_ready"),
                                      ("hdss7-200", "test_every_node_is_ready")}, failing(checked)
    messages = [c["message"] for c in checked.record["checks"] if c["outcome"] == "failed"]
    assert any(m.startswith("AssertionError: kubelet does not answer") for m in messages), messages
    fixed = runbook()
    assert fixed.rc == 0, fixed
    assert fixed.statuses("k8s_control_plane")["hdss7-21"] == "changed"
    assert fixed.statuses("k8s_node")["hdss7-22"] == "changed"
    assert fixed.statuses("k8s_node")["hdss7-21"] == "ok"
    assert not failing(fixed), failing(fixed)


def test_a_new_ca_is_rolled_through_etcd_and_kubernetes_one_host_at_a_time_with_the_api_answering(converged,
                                                                                                    runbook, tmp_path):
    """replace_ca.py, then the README's roll with Kubernetes running: the plain rerun refuses the etcd members
    (nothing changed, the cluster healthy); with the old CA in ca.extra_trusted_cas every etcd member, master,
    node and the admin kubeconfig trusts both CAs keeping its certificates (the verification warns about
    them), the next run moves each to the new CA's certificates one master at a time, and without the old CA
    everything trusts the new one only and every check passes. The API through the VIP answers throughout.
    The lab keeps the new CA."""
    lab = converged
    cert = "/opt/kubernetes/server/bin/cert"

    def serial(host: str, path: str) -> str:
        return lab.ssh(host, f"openssl x509 -noout -serial -in {path}").strip()
    # Certificates issued with issue-cert are the operator's to issue again (the README's step 2): this test's
    # own one is; those earlier tests left beside the CA are removed first.
    owned = {"ca", PEER, CLIENT, *(c.name for c in all_certs(load_inventory(PROJECT / "inventory")))}
    strays = [f for f in lab.ssh("hdss7-200", "cd /opt/certs && ls *.pem").split()
              if not f.endswith("-key.pem") and f[:-4] not in owned]
    for f in strays:
        lab.ssh("hdss7-200", f"rm -f /opt/certs/{f} /opt/certs/{f[:-4]}-key.pem")
    own = ("roll-own", "--profile", "server", "--san", "10.4.7.200")
    assert runbook(*own, name="issue_cert").rc == 0
    before = {h: serial(h, f"{cert}/kube-apiserver.pem") for h in MASTERS}
    replaced = runbook("--confirm-replace-ca", name="replace_ca")
    assert replaced.rc == 0, replaced
    old = lab.ssh("hdss7-200", "ls -d /opt/certs/replaced-*").split()[-1]
    trusting = inventory_copy(tmp_path, lambda name, data: data["data"].setdefault("ca", {}).update(
        extra_trusted_cas=[f"{old}/ca.pem"]) if name == "defaults.yaml" else None)
    # The API through the VIP, asked every 0.2 s from the ops host while the roll runs, trusting both CAs.
    poll = ("end=$(($(date +%s) + 900)); while [ $(date +%s) -lt $end ] && [ ! -e /tmp/gw-stop-poll ]; do "
            f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 2 --cacert /tmp/gw-both-cas.pem https://{VIP}/readyz;"
            " sleep 0.2; done")
    lab.ssh("hdss7-200", f"rm -f /tmp/gw-stop-poll /tmp/gw-poll.log; cat /opt/certs/ca.pem {old}/ca.pem > /tmp/gw-both-cas.pem")
    lab.ssh("hdss7-200", f"systemd-run --collect --unit=gw-poll-api sh -c {quote(poll + ' > /tmp/gw-poll.log')}")
    try:
        refused = runbook("--no-verify")
        assert refused.rc == 4, refused
        assert "would move to certificates of a CA its peers do not trust yet" in refused.stdout, refused
        assert lab.ssh("hdss7-21", f"{ETCDCTL} endpoint health 2>&1").count("is healthy") == 3

        both = runbook("-i", trusting)
        assert both.rc == 0, both
        for stage, hosts in (("etcd", ("hdss7-12", *MASTERS)), ("k8s_control_plane", MASTERS),
                             ("k8s_node", MASTERS), ("k8s_admin", ("hdss7-200",))):
            assert all("CA roll" in " ".join(both.entry(h, stage)["notes"]) for h in hosts), (stage, both)
        assert {h: serial(h, f"{cert}/kube-apiserver.pem") for h in MASTERS} == before  # certificates kept
        warned = {c["host"] for c in both.record["checks"] if c["outcome"] == "warned"}
        assert {"hdss7-12", *MASTERS, "hdss7-200"} <= warned, both.record["checks"]
        assert not [c for c in both.record["checks"] if c["outcome"] == "failed"], both

        moved = runbook("-i", trusting, "--no-verify")
        assert moved.rc == 0, moved
        reissued = runbook(*own, name="issue_cert")
        assert reissued.statuses("issue_cert") == {"hdss7-200": "changed"}, reissued
        for stage in ("etcd", "k8s_control_plane", "k8s_node"):
            assert set(moved.statuses(stage).values()) == {"changed"}, (stage, moved)
        assert all(serial(h, f"{cert}/kube-apiserver.pem") != before[h] for h in MASTERS)

        only_new = runbook()
        assert only_new.rc == 0, only_new
        assert {c["outcome"] for c in only_new.record["checks"]} <= {"passed", "skipped"}, only_new
    finally:
        lab.ssh("hdss7-200", "touch /tmp/gw-stop-poll; sleep 3")
    for host, path in (("hdss7-21", f"{cert}/ca.pem"), ("hdss7-22", "/opt/etcd/certs/ca.pem")):
        assert lab.ssh(host, f"grep -c 'BEGIN CERTIFICATE' {path}").strip() == "1"
    # One master at a time: hdss7-22's apiserver restarted after hdss7-21's whole control plane had (the hosts
    # share this machine's monotonic clock).
    def started(host: str, unit: str) -> int:
        return int(lab.ssh(host, f"systemctl show -p ExecMainStartTimestampMonotonic --value {unit}"))
    assert started("hdss7-21", "kube-scheduler") < started("hdss7-22", "kube-apiserver")
    # The API answered throughout: a restarted apiserver takes connections a second or two before it is ready,
    # and a request under way when one stops is cut, so a few of them fail (README: Faults), never more than
    # one in twenty (both masters out of the proxy at once cost 88 of 406 before the stage waited for the
    # proxy's fail_timeout between masters).
    answers = lab.ssh("hdss7-200", "cat /tmp/gw-poll.log").split()
    failed = [a for a in answers if a != "200"]
    assert len(answers) > 20 and len(failed) <= len(answers) // 20 and answers[-1] == "200", (
        f"the API did not answer throughout: {len(failed)} of {len(answers)} failed: {failed}")


def test_the_lab_tarball_is_refused_when_its_checksum_does_not_match(converged, runbook, tmp_path):
    """A server tarball whose SHA-256 is not the inventory's is never delivered: nothing changes on a master."""
    def wrong_digest(name, data):
        if name == "defaults.yaml":
            data["data"]["kubernetes"]["server_tarball_sha256"] = "0" * 64
    lab = converged
    before = lab.ssh("hdss7-21", "stat -c %Y /opt/kubernetes/server/bin/kube-apiserver")
    lab.ssh("hdss7-21", "rm /opt/kubernetes/server/bin/kube-proxy")
    run = runbook("-i", inventory_copy(tmp_path, wrong_digest), "--host", "hdss7-21", "--no-verify")
    assert run.rc == 4, run
    assert "kubernetes.server_tarball" in run.entry("hdss7-21", "k8s_binaries")["error"]
    assert lab.ssh("hdss7-21", "ls /opt/kubernetes/server/bin/kube-proxy", check=False) == ""
    assert lab.ssh("hdss7-21", "stat -c %Y /opt/kubernetes/server/bin/kube-apiserver") == before
    fixed = runbook("--host", "hdss7-21", "--no-verify")
    assert fixed.rc == 0, fixed
    assert fixed.statuses("k8s_binaries")["hdss7-21"] == "changed"
    assert lab.ssh("hdss7-21", "ls /opt/kubernetes/server/bin/kube-proxy").strip()
