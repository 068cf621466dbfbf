"""Ready for kubeadm: what kubeadm's preflight demands of a Kubernetes host (seed 003), checked on every
master_compute host. What a check cannot decide on a host (no product_uuid to read in a container) is skipped
with the reason, never passed."""

import re
from shlex import quote

import pytest

from groundwork.checks.test_time_sync import chronyc, TRACKING
from groundwork.facts import keyvalues
from groundwork.verify import reads

GROUPS = ("master_compute",)
SWAPS = "cat /proc/swaps"
LISTENERS = "ss -Hltnp"
RESOURCES = "nproc; awk '/^MemTotal:/{print $2}' /proc/meminfo"
KERNEL = ("cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null; "
          "test -d /proc/sys/net/bridge && echo br_netfilter=yes || echo br_netfilter=no")
DOCKER_CGROUP = "docker info --format '{{.CgroupDriver}}'"
# The Kubernetes and etcd programs that may hold ports of the NodePort range (their own, beside kube-proxy's
# NodePorts); ss shows a program's name cut at 15 characters.
KUBERNETES_PROGRAMS = ("kube-apiserver", "kube-controller", "kube-scheduler", "kubelet", "kube-proxy", "etcd")


def identity(host) -> str:
    """The MAC of the interface carrying the host's address, and its product_uuid (empty where unreadable)."""
    return (f"dev=$(ip -o -4 addr show to {quote(str(host.address))} | awk '{{print $2; exit}}'); "
            "echo \"mac=$(cat /sys/class/net/$dev/address 2>/dev/null)\"; "
            "echo \"uuid=$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)\"")


def names(host) -> str:
    return (f"echo \"forward=$(getent ahostsv4 {quote(host.fqdn)} | awk '{{print $1; exit}}')\"; "
            f"echo \"reverse=$(getent hosts {quote(str(host.address))} | awk '{{print $2; exit}}')\"")


def wanted_ports(host) -> dict[int, str]:
    """port -> the program that may hold it, for this host's roles."""
    ports = {host.settings.lb.backend_port: "kube-apiserver", 10250: "kubelet", 10251: "kube-scheduler",
             10252: "kube-controller"}
    if "etcd" in host.groups:
        ports.update({host.settings.etcd.client_port: "etcd", host.settings.etcd.peer_port: "etcd"})
    return ports


def listeners(text: str) -> dict[int, set[str]]:
    """port -> the programs listening on it (TCP), from `ss -Hltnp`."""
    held: dict[int, set[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[3]:
            continue
        port = fields[3].rsplit(":", 1)[1]
        if port.isdigit():
            held.setdefault(int(port), set()).update(re.findall(r'\(\("([^"]+)"', line) or {"(unknown)"})
    return held


@reads(SWAPS)
def test_swap_is_off(host, probe):
    """swap is off (kubeadm's preflight refuses it), or readiness.allow_swap records --ignore-preflight-errors=Swap"""
    swaps = [line.split()[0] for line in probe.run(SWAPS).stdout.splitlines()[1:] if line.strip()]
    if swaps and host.settings.readiness.allow_swap:
        probe.warn(f"swap is on ({', '.join(swaps)}); readiness.allow_swap records kubeadm's "
                   "--ignore-preflight-errors=Swap and the kubelet's failSwapOn: false")
        return
    assert not swaps, (f"swap is on: {', '.join(swaps)} (swapoff -a, and take it out of /etc/fstab; or set "
                       "readiness.allow_swap to record --ignore-preflight-errors=Swap)")


@reads(LISTENERS)
def test_the_ports_of_its_roles_are_free_or_held_by_their_own_program(host, probe):
    """the ports its roles need (the apiserver's, 10250-10252, etcd's on a member) are free or held by the program
    meant to hold them, and nothing else listens in the NodePort range"""
    held = listeners(probe.run(LISTENERS).stdout)
    taken = {port: sorted(held[port]) for port, program in wanted_ports(host).items()
             if port in held and not all(p.startswith(program) for p in held[port])}
    low, high = map(int, host.settings.kubernetes.node_port_range.split("-"))
    strangers = {port: sorted(held[port]) for port in held if low <= port <= high and port not in wanted_ports(host)
                 and not all(p.startswith(KUBERNETES_PROGRAMS) for p in held[port])}
    assert not taken, "; ".join(f"port {port} is held by {', '.join(programs)}, not {wanted_ports(host)[port]}"
                                for port, programs in taken.items())
    assert not strangers, (f"in the NodePort range {low}-{high}: " + "; ".join(
        f"port {port} is held by {', '.join(programs)}" for port, programs in strangers.items())
        + " (a Service's NodePort there would not open)")


def _others(host, inventory, session) -> list:
    return [h for h in inventory.group_members("master_compute") if h.name != host.name and h in session.targets]


@reads(identity)  # and, as gathered there, every other targeted master_compute host's
def test_the_mac_address_is_unique_among_the_kubernetes_hosts(host, probe, inventory, session):
    """the MAC address of the interface carrying its address is no other Kubernetes host's"""
    mine = keyvalues(probe.run(identity(host)).stdout).get("mac", "")
    assert mine, f"no interface carries {host.address}"
    same = [h.name for h in _others(host, inventory, session)
            if keyvalues(session.probe_for(h, probe.evidence).run(identity(h)).stdout).get("mac") == mine]
    assert not same, f"MAC address {mine} is also {', '.join(same)}'s (cloned machines: give each its own)"


@reads(identity)
def test_the_product_uuid_is_unique_among_the_kubernetes_hosts(host, probe, inventory, session):
    """the product_uuid (/sys/class/dmi/id/product_uuid) is no other Kubernetes host's"""
    mine = keyvalues(probe.run(identity(host)).stdout).get("uuid", "")
    if not mine:
        pytest.skip("cannot decide: no product_uuid to read here (a container, or a machine without DMI)")
    same = [h.name for h in _others(host, inventory, session)
            if keyvalues(session.probe_for(h, probe.evidence).run(identity(h)).stdout).get("uuid") == mine]
    assert not same, f"product_uuid {mine} is also {', '.join(same)}'s (cloned machines: give each its own)"


@reads(DOCKER_CGROUP)
def test_docker_and_the_kubelet_use_the_same_cgroup_driver(host, probe):
    """docker's cgroup driver is the one the kubelet is set to (docker.cgroup_driver, the kubelet's cgroupDriver)"""
    result = probe.run(DOCKER_CGROUP)
    assert result.rc == 0, f"the container runtime does not answer: {result.stderr.strip() or 'docker info failed'}"
    found, wanted = result.stdout.strip(), host.settings.docker.cgroup_driver
    assert found == wanted, f"docker uses cgroup driver {found}, the kubelet {wanted}: the kubelet would not start"


@reads(KERNEL)
def test_bridged_traffic_is_filtered_and_forwarded(host, probe):
    """br_netfilter is loaded, bridge-nf-call-iptables and ip_forward are 1"""
    out = probe.run(KERNEL).stdout.split()
    values = {"ip_forward": out[0] if out else "", "bridge-nf-call-iptables": out[1] if len(out) > 2 else ""}
    assert "br_netfilter=yes" in out, "br_netfilter is not loaded (modprobe br_netfilter)"
    wrong = {key: value or "unset" for key, value in values.items() if value != "1"}
    assert not wrong, f"{wrong}: kubeadm wants both 1 (host_prep sets them)"


@reads(names)
def test_its_name_resolves_to_its_address_and_back(host, probe):
    """its FQDN resolves to its address, and its address back to its name (the dns stages serve both)"""
    found = keyvalues(probe.run(names(host)).stdout)
    assert found.get("forward") == str(host.address), (
        f"{host.fqdn} resolves to {found.get('forward') or 'nothing'}, not {host.address}")
    reverse = found.get("reverse", "").rstrip(".")
    assert reverse.lower() in (host.fqdn.lower(), host.name.lower()), (
        f"{host.address} resolves back to {reverse or 'nothing'}, not {host.fqdn}")


@reads(TRACKING)
def test_its_time_is_in_sync(host, probe):
    """its time is in sync (chronyd synchronised to its source; see the time checks for the offset)"""
    if not host.settings.time_sync.enabled:
        pytest.skip("cannot decide: time_sync is not enabled, so groundwork does not know the host's time source")
    leap = chronyc(probe, TRACKING)[0][-1]
    assert leap == "Normal", f"chronyd is {leap.lower()}"


@reads(RESOURCES)
def test_it_has_the_cpus_and_memory_kubeadm_asks_for(host, probe):
    """it has the CPUs and memory of a control-plane host (readiness.min_cpus, min_memory_mb: kubeadm's 2 and 1700 MB)"""
    out = probe.run(RESOURCES).stdout.split()
    cpus, memory_mb = int(out[0]), int(out[1]) // 1024
    r = host.settings.readiness
    short = [f"{cpus} CPU(s), {r.min_cpus} wanted"] if cpus < r.min_cpus else []
    short += [f"{memory_mb} MB of memory, {r.min_memory_mb} wanted"] if memory_mb < r.min_memory_mb else []
    assert not short, "; ".join(short)
