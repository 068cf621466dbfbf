"""The pod network the way the tutorial's flannel host-gw makes it, managed by groundwork itself (flannel is in
no registry this platform reaches; README says so).

docker0 on each node already carries its pods' subnet 172.7.NN.1/24 (the docker stage's bip). Each node gets a
route to every other node's subnet via that node's address, FORWARD accepts traffic from and to the pod range
172.7.0.0/16 (as flannel does), and a pod's traffic to another pod leaves unmasqueraded, so that the other side
sees the pod's own address (the tutorial's `! -d 172.7.0.0/16` rule in place of docker's). The service range
goes to docker0, so that the node itself reaches ClusterIPs without a default route. A script holds the
whole state and a oneshot unit runs it at boot and after every docker restart; the stage runs it again when
the live routes or rules differ from it.
"""

from __future__ import annotations

from groundwork import facts as probes
from groundwork.changes import Change, CommandChange, DesiredFile, file_changes, value_diff, wanted_digests
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.render import render
from groundwork.stages import Stage
from groundwork.tasks.k8s_control_plane import pod_cidr
from groundwork.tasks.kubernetes import k8s_stage_applies

SCRIPT = "/usr/local/sbin/groundwork-pod-network"
SERVICE = "groundwork-pod-network"
UNIT = f"{SERVICE}.service"


def wanted_state(host: HostModel, inventory: Inventory) -> dict:
    subnet, cidr = str(host.docker_bip.network), pod_cidr(host)
    others = [h for h in inventory.group_members("master_compute") if h.name != host.name]
    # The service range through docker0: the node itself reaches a ClusterIP only when some route covers it,
    # since kube-proxy rewrites the destination after routing has picked one (a network without a default
    # route, as the lab's, has none).
    service = {"subnet": str(host.settings.kubernetes.service_cidr), "dev": "docker0"}
    return {"routes": [{"subnet": str(h.docker_bip.network), "via": str(h.address)} for h in others] + [service],
            "forward": [f"-s {cidr} -j ACCEPT", f"-d {cidr} -j ACCEPT"],
            "keep": f"-s {subnet} ! -d {cidr} ! -o docker0 -j MASQUERADE",
            "docker_rule": f"-s {subnet} ! -o docker0 -j MASQUERADE"}


def desired(host: HostModel, inventory: Inventory) -> list[DesiredFile]:
    return [DesiredFile(SCRIPT, render("pod_network/pod-network.sh.j2", **wanted_state(host, inventory)), mode="755"),
            DesiredFile(f"/etc/systemd/system/{UNIT}", render("pod_network/pod-network.service.j2", script=SCRIPT))]


def live_state() -> probes.Probe:
    def parse(text: str) -> dict:
        routes, _, rest = text.partition("@@filter\n")
        forward, _, nat = rest.partition("@@nat\n")
        return {"routes": {tuple(line.split()[:3]) for line in routes.splitlines()},
                "forward": forward.splitlines(), "nat": nat.splitlines()}
    return probes.Probe("live", "ip -4 route show; echo @@filter; iptables -S FORWARD; echo @@nat; "
                        "iptables -t nat -S POSTROUTING", parse)


def differences(state: dict, live: dict) -> list[str]:
    """What the live routes and rules lack (or, docker's rule, still have), in the operator's words."""
    def words(route: dict) -> tuple[str, str, str]:
        return (route["subnet"], "via", route["via"]) if "via" in route else (route["subnet"], "dev", route["dev"])
    missing = [f"route {' '.join(words(r))}" for r in state["routes"] if words(r) not in live["routes"]]
    missing += [f"FORWARD {rule}" for rule in state["forward"] if f"-A FORWARD {rule}" not in live["forward"]]
    if f"-A POSTROUTING {state['keep']}" not in live["nat"]:
        missing.append(f"POSTROUTING {state['keep']}")
    if f"-A POSTROUTING {state['docker_rule']}" in live["nat"]:
        missing.append(f"POSTROUTING {state['docker_rule']} still there")
    return missing


def decide(host: HostModel, inventory: Inventory, facts: Facts, notes: list[str]) -> list[Change]:
    plan: list[Change] = list(file_changes(desired(host, inventory), facts["files"]))
    state = wanted_state(host, inventory)
    off = differences(state, facts["live"])
    if plan or off or not facts["services"].on(SERVICE) or facts["services"].pending(SERVICE):
        plan.append(CommandChange("apply the pod network", [
            f"systemctl daemon-reload && systemctl enable {UNIT} >/dev/null 2>&1 && systemctl restart {UNIT}"],
            "".join(value_diff(item, None, "in place") for item in off) or value_diff(UNIT, None, "enabled, applied"),
            pending=SERVICE))
    else:
        notes.append(f"{len(state['routes'])} route(s) to other nodes' pods, forwarding and masquerade as wanted")
    return plan


def stage_probes(host: HostModel, inventory: Inventory) -> list[probes.Probe]:
    files = desired(host, inventory)
    return [probes.files([f.path for f in files], read_unless=wanted_digests(files)), probes.services([SERVICE]),
            live_state()]


STAGE = Stage(name="pod_network", title="routes between the nodes' pod subnets (host-gw)", groups=("master_compute",),
              needs=("host_prep", "docker"),
              select=k8s_stage_applies, checks="test_kubernetes.py",
              probes=lambda host, ctx: stage_probes(host, ctx.inventory),
              decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts, notes),
              notes=lambda host, ctx: [f"pods on {host.docker_bip.network} (docker0)"])
