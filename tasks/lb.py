"""The proxy hosts' second job, the tutorial's layer after etcd: an L4 proxy for the apiservers behind a VIP.

Two steps, on the proxy hosts. `l4proxy`: nginx with its stream module listens on lb.port (7443) on every proxy
host and passes connections through to the apiservers (lb.backends, default every master_compute host, on
6443; `max_fails=3 fail_timeout=30s`, `proxy_connect_timeout 2s`, `proxy_timeout 900s`). The stream block is a
file of its own, included from nginx.conf by one line added to the distribution's file, so any http virtual
hosts on the same host stay as they are; `nginx -t` runs before the reload, and the previous files go back when
it fails.

`vip`: keepalived holds the VIP (lb.vip, default the network's address 10) on one proxy host, talking VRRP by
unicast to the other proxy hosts, with its password from the secret source. A check script tests every 2 s
that something listens on the proxy's port; when nothing does, that host goes to FAULT and the VIP moves. Every
host has nopreempt, so a host coming back never takes the VIP back. The hosts are done one at a time in
hosts.yaml order, each waiting until the VIP answers, so that a first start gives the VIP to the first proxy
host (priority 100) as the tutorial has it; a running keepalived is reloaded, not restarted, so a rerun that
changes its file does not move the VIP either.
"""

from __future__ import annotations

from groundwork import facts as probes
from groundwork.changes import (Change, DesiredFile, FileEdit, StageError, activate_service,
                                file_changes, journal_tail, value_diff, wait_until, wanted_digests)
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import Stage

NGINX_CONF = "/etc/nginx/nginx.conf"
STREAM_CONF = "/etc/nginx/stream.d/kube-apiserver.conf"
INCLUDE = f"include {STREAM_CONF};"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
CHECK_SCRIPT = "/etc/keepalived/check_port.sh"
VIP_WAIT_SECONDS = 15  # keepalived elects a holder within about 3.6 s (3 adverts and a skew)


def listening(port: int) -> str:
    """A command that succeeds when something listens on the TCP port (ss is in iproute2 on both families)."""
    return f"ss -Hlnt 'sport = :{int(port)}' | grep -q ."


# -- l4proxy: nginx stream ------------------------------------------------------------------------------

def with_stream_include(conf: bytes) -> bytes:
    """nginx.conf with the line that includes the stream file, added at the end (top level) when missing."""
    if any(line.strip() == INCLUDE.encode() for line in conf.splitlines()):
        return conf
    return (conf + (b"\n" if conf and not conf.endswith(b"\n") else b"")
            + b"\n# Managed by groundwork (l4proxy): the apiservers' L4 proxy, a stream block of its own\n"
            + INCLUDE.encode() + b"\n")


# The tutorial's: a backend that refused 3 connections is left out for this many seconds.
BACKEND_FAIL_TIMEOUT = 30


def stream_file(inventory: Inventory) -> DesiredFile:
    lb = inventory.defaults.lb
    return DesiredFile(STREAM_CONF, render("lb/nginx-stream.conf.j2", backends=inventory.lb_backends,
                                           backend_port=lb.backend_port, port=lb.port,
                                           fail_timeout=BACKEND_FAIL_TIMEOUT))


def proxy_probes(host: HostModel, inventory: Inventory, family: str | None = None) -> list[probes.Probe]:
    packages = candidate_packages(host.settings.lb.nginx_packages, family)
    return [probes.os_info(), probes.packages(packages), probes.services(["nginx"]),
            probes.files([STREAM_CONF], read_unless=wanted_digests([stream_file(inventory)])),
            # read whole: its new content is the old one with a line added
            probes.files([NGINX_CONF], read_unless={}, key="nginx_conf")]


def decide_proxy(host: HostModel, facts: Facts, inventory: Inventory) -> list[Change]:
    lb = inventory.defaults.lb
    platform = platform_for(facts["os"])
    install = install_missing(platform, lb.nginx_packages.get(platform.family, []), facts["packages"])
    changes: list[Change] = list(file_changes([stream_file(inventory)], facts["files"]))
    conf = facts["nginx_conf"].get(NGINX_CONF)
    if conf is None:  # nginx is installed by this plan: its nginx.conf is known only then
        changes.append(FileEdit(NGINX_CONF, with_stream_include, f"include {STREAM_CONF} from {NGINX_CONF}",
                                value_diff(f"{NGINX_CONF} (as installed)", None, INCLUDE)))
    else:
        changes += file_changes([DesiredFile(NGINX_CONF, with_stream_include(conf.content), mode=conf.mode,
                                             owner=conf.owner, group=conf.group)], facts["nginx_conf"])
    plan: list[Change] = [*install, *changes]
    running = facts["services"].running("nginx")
    if changes or install or not facts["services"].settled("nginx"):
        answers = wait_until(listening(lb.port), 10, f"nginx does not listen on port {lb.port}",
                             diagnose=journal_tail("nginx"))
        plan.append(activate_service("nginx", "check nginx's configuration and reload it",
                                     value_diff("nginx", "previous configuration" if running else "not running",
                                                f"proxying port {lb.port} to the apiservers"),
                                     check="nginx -t -q", reload=running and not install, waits=[answers]))
    return plan


def proxy_notes(inventory: Inventory) -> list[str]:
    lb = inventory.defaults.lb
    return [f"port {lb.port} -> {', '.join(f'{b}:{lb.backend_port}' for b in inventory.lb_backends)}"]


# -- vip: keepalived ------------------------------------------------------------------------------------

def vip_files(host: HostModel, inventory: Inventory, interface: str, password: str) -> list[DesiredFile]:
    """The check script, then keepalived.conf (it names the script, so the script is written first); the file
    holds the VRRP password: 0600, never shown."""
    lb = inventory.defaults.lb
    peers = [str(h.address) for h in inventory.group_members("proxy") if h.name != host.name]
    conf = render("lb/keepalived.conf.j2", host_name=host.name, check_script=CHECK_SCRIPT, port=lb.port,
                  interface=interface, router_id=lb.router_id, priority=inventory.vrrp_priority(host),
                  address=host.address, peers=peers, password=password, vip=inventory.lb_vip)
    return [DesiredFile(CHECK_SCRIPT, render("lb/check_port.sh"), mode="755"),
            DesiredFile(KEEPALIVED_CONF, conf, mode="600", sensitive=True, validate="keepalived -t -f {path}")]


def vip_pings(vip) -> str:
    """A command that succeeds when the VIP answers a ping from this host: some proxy host (this one too) holds it."""
    return f"ping -c 1 -W 1 {vip} >/dev/null 2>&1"


def vip_answers(inventory: Inventory) -> probes.Probe:
    return probes.Probe("vip_answers", f"{vip_pings(inventory.lb_vip)} && echo yes || echo no",
                        lambda text: text.strip() == "yes")


def vip_probes(host: HostModel, inventory: Inventory, family: str | None = None) -> list[probes.Probe]:
    packages = candidate_packages(host.settings.lb.keepalived_packages, family)
    return [probes.os_info(), probes.packages(packages), probes.services(["keepalived"]), probes.interfaces(),
            probes.keepalived_state(), vip_answers(inventory),
            probes.files([CHECK_SCRIPT], read_unless=wanted_digests([DesiredFile(CHECK_SCRIPT,
                                                                                  render("lb/check_port.sh"))])),
            # its content depends on the interface found in this same gather; it holds the password
            probes.files([KEEPALIVED_CONF], read_unless={}, key="keepalived_conf", sensitive=True)]


def decide_vip(host: HostModel, facts: Facts, inventory: Inventory, password: str) -> list[Change]:
    lb = inventory.defaults.lb
    platform = platform_for(facts["os"])
    install = install_missing(platform, lb.keepalived_packages.get(platform.family, []), facts["packages"])
    interface = facts["interfaces"].get(str(host.address))
    if interface is None:
        raise StageError(f"no interface of {host.name} carries its address {host.address}: keepalived puts the "
                         "VIP on that interface")
    changes = file_changes(vip_files(host, inventory, interface, password),
                           {**facts["files"], **facts["keepalived_conf"]})
    plan: list[Change] = [*install, *changes]
    running = facts["services"].running("keepalived")
    # Running, yet the VIP answers nowhere (no proxy host won an election): only a restart makes this one
    # stand again, and it must then answer.
    orphaned = running and not changes and not install and not facts["vip_answers"]
    if changes or install or not facts["services"].settled("keepalived") or orphaned:
        vip = inventory.lb_vip
        # The VIP answers once some proxy host holds it: this one after its election, or the one holding it.
        answers = wait_until(vip_pings(vip), VIP_WAIT_SECONDS,
                             f"the VIP {vip} does not answer: no proxy host holds it", interval=1,
                             diagnose=journal_tail("keepalived"))
        summary = ("restart keepalived: the VIP answers on no proxy host" if orphaned
                   else "reload keepalived (the VIP stays where it is) and check that it answers" if running
                   else "start keepalived and wait until the VIP answers")
        before = ("running, but no proxy host holds the VIP" if orphaned
                  else "running on the previous configuration" if running else "not running")
        plan.append(activate_service("keepalived", summary, value_diff("keepalived", before, f"VRRP for {vip}, "
                                                                       f"priority {inventory.vrrp_priority(host)}"),
                                     reload=running and not install and not orphaned, waits=[answers]))
    return plan


def leave_fault(host: HostModel, facts: Facts, ctx: RunContext) -> tuple[str, str, str] | None:
    """keepalived in FAULT when it was read: its port check failed (nginx was down; the step before may just
    have started it). Not a change of groundwork's, but the stage ends with keepalived able to take the VIP
    again, or says why not."""
    if facts["keepalived_state"] != "FAULT":
        return None
    port = ctx.inventory.defaults.lb.port
    return ("waiting for keepalived to leave FAULT",
            wait_until(f'[ "$({probes.KEEPALIVED_STATE})" != FAULT ]', 10,
                       f"keepalived stays in FAULT: its check finds nothing listening on port {port}", interval=0.5),
            f"keepalived was in FAULT (nothing listened on port {port}); its check passes again")


PROXY = Stage(name="l4proxy", title="nginx stream proxy to the apiservers", groups=("proxy",), checks="test_lb.py",
              needs=("host_prep",), installs=lambda host: host.settings.lb.nginx_packages,
              probes=lambda host, ctx: proxy_probes(host, ctx.inventory, ctx.family(host.name)),
              decide=lambda host, facts, ctx, notes: decide_proxy(host, facts, ctx.inventory),
              notes=lambda host, ctx: proxy_notes(ctx.inventory))
VIP = Stage(name="vip", title="keepalived VIP in front of the L4 proxy", groups=("proxy",), checks="test_lb.py",
            needs=("host_prep", "l4proxy"), installs=lambda host: host.settings.lb.keepalived_packages,
            secrets=frozenset({"vrrp_password"}),
            probes=lambda host, ctx: vip_probes(host, ctx.inventory, ctx.family(host.name)),
            notes=lambda host, ctx: [f"VIP {ctx.inventory.lb_vip}, router id {ctx.inventory.defaults.lb.router_id}, "
                                     f"priority {ctx.inventory.vrrp_priority(host)}, nopreempt"],
            decide=lambda host, facts, ctx, notes: decide_vip(host, facts, ctx.inventory, ctx.secrets["vrrp_password"]),
            settle=leave_fault,
            select=lambda host, inventory: inventory.defaults.lb.vrrp, serial=True, stop_at_failure=False)
STAGES = [PROXY, VIP]
