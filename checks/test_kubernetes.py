"""Kubernetes, checked as its operators check it: each master's apiserver, controller-manager and scheduler, each
node Ready with kubelet and kube-proxy answering and its pod routes in place; from the ops host, the API through
the VIP with the admin kubeconfig, every node Ready, a DaemonSet of the registry's workload image Running on every
node, a pod reaching a pod on another node, and a Service's ClusterIP answering through kube-proxy.

The DaemonSet and its Service are the verification's canary: they live in the namespace groundwork-check and stay
there between runs (applied again, unchanged, by every verification)."""

import inspect
import json
import time
from shlex import quote

import pytest

from groundwork.tasks.k8s_node import health as node_health
from groundwork.tasks.k8s_control_plane import health as control_plane_health
from groundwork.tasks.kubernetes import as_admin, as_kubelet, node_name, vip_server, workload_image
from groundwork.tasks.pod_network import differences, live_state, wanted_state
from groundwork.verify import acts, reads

GROUPS = ("master_compute",)
NAMESPACE = "groundwork-check"
CANARY = "canary"
WAIT_SECONDS = 90
FETCH = "/bin/busybox timeout 5 /bin/busybox wget -qO-"  # (busybox-static's wget -T crashes)


@pytest.fixture(autouse=True)
def _kubernetes_enabled(session):
    if not session.inventory.defaults.kubernetes.enabled:
        pytest.skip("no Kubernetes in this inventory (kubernetes.server_tarball is not set)")


def on_kubernetes(read):
    """A read of (host) or (host, inventory), declared only where the inventory has Kubernetes (elsewhere the
    checks skip: nothing to gather)."""
    def declared(host, session):
        if not session.inventory.defaults.kubernetes.enabled:
            return None
        return read(host, session.inventory) if len(inspect.signature(read).parameters) == 2 else read(host)
    return declared


# -- on every master and node -----------------------------------------------------------------------------

def apiserver_readyz(host) -> str:
    k, port = host.settings.kubernetes, host.settings.lb.backend_port
    return f"curl -sS --max-time 5 --cacert {quote(k.cert_dir + '/ca.pem')} https://{host.address}:{port}/readyz"


def controller_manager(host) -> str:
    return control_plane_health(host, "kube-controller-manager")


def scheduler(host) -> str:
    return control_plane_health(host, "kube-scheduler")


def kubelet(host) -> str:
    return node_health("kubelet")


def kube_proxy(host) -> str:
    return node_health("kube-proxy")


def node_ready(host) -> str:
    """The node's Ready condition, as the kubelet's own credentials read it through the VIP."""
    ready = '{.status.conditions[?(@.type=="Ready")].status}'
    return f"{as_kubelet(host)} get node {quote(node_name(host))} -o jsonpath={quote(ready)}"


def pod_network(host):
    return live_state()


@reads(on_kubernetes(apiserver_readyz))
def test_the_apiserver_answers_with_its_ca_signed_certificate(host, probe):
    """the apiserver on this master answers /readyz over TLS with a certificate the CA signed"""
    result = probe.run(apiserver_readyz(host))
    assert result.rc == 0 and result.stdout.strip() == "ok", (
        f"kube-apiserver on {host.address}:{host.settings.lb.backend_port} does not answer: "
        f"{(result.stderr or result.stdout).strip()[-300:]}")


def answers(probe, command: str, what: str) -> None:
    result = probe.run(command)
    assert result.rc == 0, f"{what} does not answer on its /healthz (curl exit {result.rc})"


@reads(on_kubernetes(controller_manager))
def test_the_controller_manager_is_healthy(host, probe):
    """the controller-manager on this master answers /healthz"""
    answers(probe, controller_manager(host), "kube-controller-manager")


@reads(on_kubernetes(scheduler))
def test_the_scheduler_is_healthy(host, probe):
    """the scheduler on this master answers /healthz"""
    answers(probe, scheduler(host), "kube-scheduler")


@reads(on_kubernetes(kubelet))
def test_the_kubelet_answers(host, probe):
    """the kubelet on this node answers /healthz"""
    answers(probe, kubelet(host), "kubelet")


@reads(on_kubernetes(kube_proxy))
def test_kube_proxy_answers(host, probe):
    """kube-proxy on this node answers /healthz"""
    answers(probe, kube_proxy(host), "kube-proxy")


@reads(on_kubernetes(node_ready))
def test_the_node_is_ready(host, probe):
    """the node is Ready, as the kubelet's own credentials read it through the VIP"""
    result = probe.run(node_ready(host))
    assert result.rc == 0, f"the node {node_name(host)} cannot be read: {result.stderr.strip()[-300:]}"
    assert result.stdout.strip() == "True", f"the node {node_name(host)} is not Ready ({result.stdout.strip() or '?'})"


@reads(on_kubernetes(pod_network))
def test_the_pod_network_routes_and_rules_are_in_place(host, probe, inventory):
    """a route to every other node's pod subnet, pod forwarding, and no masquerade between pods"""
    missing = differences(wanted_state(host, inventory), probe.fact(pod_network(host)))
    assert not missing, "the pod network lacks: " + "; ".join(missing)


# -- from the ops host, with the admin kubeconfig ------------------------------------------------------------

def kubectl(host) -> str:
    return as_admin(host)


def admin_kubeconfig(host, inventory) -> list[str]:
    """Its mode, the server it names, the VIP's /readyz with the CA's certificate, and kubectl through it."""
    k = host.settings.kubernetes
    # The CA first; during a roll (ca.extra_trusted_cas) an apiserver not moved yet answers with the old CA's.
    cas = " ".join(quote(c) for c in [host.settings.ca.dir + "/ca.pem", *host.settings.ca.extra_trusted_cas])
    return [f"stat -c %a {quote(k.admin_kubeconfig)}",
            f"{kubectl(host)} config view -o jsonpath='{{.clusters[0].cluster.server}}'",
            f"for ca in {cas}; do curl -sS --max-time 5 --cacert \"$ca\" {vip_server(inventory)}/readyz "
            "&& echo \" $ca\" && break; done",
            f"{kubectl(host)} get --raw /readyz"]


def nodes(host) -> str:
    return f"{kubectl(host)} get nodes -o json"


@pytest.mark.groups("ops")
@reads(on_kubernetes(admin_kubeconfig))
def test_the_admin_kubeconfig_is_private_and_reaches_the_api_through_the_vip(host, probe, inventory):
    """the admin kubeconfig is 0600 and its kubectl reaches the API through VIP:7443, which answers with a
    certificate the CA signed (or, during a roll, a CA still trusted: a warning)"""
    k = host.settings.kubernetes
    mode, server, through, answer = (probe.run(command) for command in admin_kubeconfig(host, inventory))
    assert mode.stdout.strip() == "600", f"{k.admin_kubeconfig} is mode {mode.stdout.strip() or 'missing'}, not 600"
    assert server.stdout.strip() == vip_server(inventory), \
        f"{k.admin_kubeconfig} points at {server.stdout.strip()}, not the VIP"
    answered, _, signer = through.stdout.strip().partition(" ")
    assert answered == "ok", f"{vip_server(inventory)} does not answer with a CA-signed certificate: {through.stderr}"
    if signer != f"{host.settings.ca.dir}/ca.pem":
        probe.warn(f"{vip_server(inventory)} answers with a certificate of {signer}, a CA still trusted during a "
                   "roll (ca.extra_trusted_cas): run again to move the apiservers to the CA's certificates")
    assert answer.stdout.strip() == "ok", f"kubectl through the VIP fails: {answer.stderr.strip()[-300:]}"


@pytest.mark.groups("ops")
@reads(on_kubernetes(nodes))
def test_every_node_is_ready(host, probe, inventory):
    """every master_compute host is a node, Ready"""
    result = probe.run(nodes(host))
    assert result.rc == 0, result.stderr.strip()[-300:]
    ready = {n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
             for n in json.loads(result.stdout)["items"]}
    for node in inventory.group_members("master_compute"):
        assert node_name(node) in ready, f"{node_name(node)} is not a node of the cluster"
        assert ready[node_name(node)], f"{node_name(node)} is not Ready"


def canary_manifest(inventory) -> str:
    """A DaemonSet of the registry's workload image serving its pod's name over http, and a Service in front."""
    image = workload_image(inventory)
    serve = "mkdir -p /www && hostname > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": CANARY, "namespace": NAMESPACE},
             "spec": {"selector": {"matchLabels": {"app": CANARY}}, "template": {
                 "metadata": {"labels": {"app": CANARY}},
                 "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                                          "command": ["/bin/busybox", "sh", "-c", serve],
                                          "ports": [{"containerPort": 80}]}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": CANARY, "namespace": NAMESPACE},
             "spec": {"selector": {"app": CANARY}, "ports": [{"port": 80, "targetPort": 80}]}}]
    return "".join(json.dumps(d) + "\n" for d in docs)


def running_canaries(probe, host) -> dict[str, dict]:
    """node -> {pod, ip} of the canary pods that are Running and ready."""
    result = probe.run(f"{kubectl(host)} -n {NAMESPACE} get pods -l app={CANARY} -o json")
    pods = json.loads(result.stdout or '{"items": []}')["items"] if result.rc == 0 else []
    return {p["spec"].get("nodeName"): {"pod": p["metadata"]["name"], "ip": p["status"].get("podIP")}
            for p in pods if p["status"].get("phase") == "Running"
            and all(c.get("ready") for c in p["status"].get("containerStatuses", []))}


@pytest.fixture
def canaries(host, probe, inventory):
    """The canary applied, and its pods once one runs on every node (or what runs after WAIT_SECONDS)."""
    applied = probe.run(f"{kubectl(host)} apply -f -", stdin=canary_manifest(inventory).encode())
    assert applied.rc == 0, f"kubectl apply refused the canary: {applied.stderr.strip()[-300:]}"
    nodes = {node_name(h) for h in inventory.group_members("master_compute")}
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        running = running_canaries(probe, host)
        if nodes <= set(running) or time.monotonic() > deadline:
            return nodes, running
        time.sleep(2)


@pytest.mark.groups("ops")
@acts  # applies the canary and waits for it
def test_a_daemonset_from_the_registry_runs_on_every_node(host, probe, inventory, canaries):
    """a DaemonSet of the workload image from the registry is Running on every node"""
    nodes, running = canaries
    missing = sorted(nodes - set(running))
    assert not missing, (f"no Running {workload_image(inventory)} pod on {', '.join(missing)} after "
                         f"{WAIT_SECONDS}s: {probe.run(f'{kubectl(host)} -n {NAMESPACE} get pods -o wide').stdout}")


@pytest.mark.groups("ops")
@acts  # applies the canary and waits for it
def test_a_pod_reaches_a_pod_on_another_node(host, probe, canaries):
    """a pod on one node fetches a page from the pod on each other node, by its pod IP"""
    _, running = canaries
    if len(running) < 2:
        pytest.skip("fewer than two nodes run a canary pod (the DaemonSet check says why)")
    (node_a, a), *others = sorted(running.items())
    for node_b, b in others:
        got = probe.run(f"{kubectl(host)} -n {NAMESPACE} exec {quote(a['pod'])} -- {FETCH} "
                        f"http://{b['ip']}/")
        assert got.stdout.strip() == b["pod"], (f"{a['pod']} on {node_a} cannot reach {b['pod']} on {node_b} at "
                                                f"{b['ip']}: {(got.stderr or got.stdout).strip()[-300:]}")


@acts  # reads the canary the ops host applied in this run, waiting for kube-proxy's sync
def test_the_canary_services_cluster_ip_answers_here_through_kube_proxy(host, probe, inventory, session):
    """the canary Service's ClusterIP answers on this node, through its kube-proxy's rules"""
    ops = inventory.ops_host
    if ops not in session.targets:
        pytest.skip(f"the ops host {ops.name} is not targeted, so the canary was not applied in this run")
    ops_probe = session.probe_for(ops, probe.evidence)
    ip = ops_probe.run(f"{kubectl(ops)} -n {NAMESPACE} get service {CANARY} "
                       "-o jsonpath='{.spec.clusterIP}'").stdout.strip()
    assert ip, f"the canary Service has no ClusterIP (the DaemonSet check on {ops.name} says more)"
    running = {p["pod"] for p in running_canaries(ops_probe, ops).values()}
    # A Service just created reaches the nodes' rules within kube-proxy's next sync (a second or two).
    got = probe.run(f"for i in $(seq 20); do curl -sS --max-time 3 http://{ip}/ && exit 0; sleep 1; done; exit 1")
    assert got.rc == 0 and got.stdout.strip() in running, (
        f"the ClusterIP {ip} does not answer here: {(got.stderr or got.stdout).strip()[-300:]}")
