"""DNS with dnsmasq on every proxy host, seed 002's "使用dnsmasq" in place of bind9 (`dns.backend: dnsmasq`).

Every proxy host serves the same names on its own address: host.com (every inventory host and `dns`) and od.com
(`dns`, the registry's name, extra records), from one generated file checked with `dnsmasq --test` before a
restart, put back when dnsmasq does not come up on it. There are no zone transfers and no serials. A host that
ran bind9 has named stopped and disabled first, so that the two never fight over port 53 (the bind9 stages do
the same to dnsmasq when the backend goes back).
"""

from __future__ import annotations

import shlex

from groundwork import facts as probe
from groundwork.changes import Change, CommandChange, DesiredFile, StageReport, apply_plan, file_changes, value_diff
from groundwork.facts import Facts, ServiceInfo
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import PLATFORMS, Platform, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import RunContext, Stage

WAIT_SECONDS = 10


def records(inventory: Inventory) -> list[tuple[str, str]]:
    """(FQDN, address) for every record of both zones, as dnsmasq's address=/NAME/IP lines take them."""
    from tasks.dns import zones

    return [(f"{name.lower()}.{zone}", str(address)) for zone, named in zones(inventory).items()
            for name, address in named.items()]


def render_conf(host: HostModel, inventory: Inventory) -> bytes:
    from tasks.dns import zones

    dns = inventory.defaults.dns
    return render("dns/dnsmasq.conf.j2", listen=str(host.address), record_ttl=dns.record_ttl,
                  forwarders=[str(f) for f in dns.forwarders], zones=list(zones(inventory)), records=records(inventory))


def stop_other_server(name: str, service: ServiceInfo | None, why: str) -> list[Change]:
    """Stop and disable a DNS server of the other backend, so that only one listens on port 53."""
    if not (service and service.exists and (service.active == "active" or service.enabled == "enabled")):
        return []
    unit = shlex.quote(name)
    return [CommandChange(f"stop and disable {name} ({why})", [f"systemctl disable --now {unit}"],
                          value_diff(name, f"{service.active}, {service.enabled}", "inactive, disabled"))]


def probes() -> list[probe.Probe]:
    layouts = [pl.dnsmasq for pl in PLATFORMS.values()]
    return [probe.os_info(), probe.packages(sorted({p for d in layouts for p in d.packages})),
            probe.services(sorted({"named", *(d.service for d in layouts)})),
            probe.files(sorted({d.conf for d in layouts}))]


def decide(host: HostModel, inventory: Inventory, facts: Facts, platform: Platform, changes: list) -> list[Change]:
    d = platform.dnsmasq
    plan = stop_other_server(platform.bind.service, facts["services"].get(platform.bind.service),
                             "the dns backend is dnsmasq")
    install = install_missing(platform, list(d.packages), facts["packages"])
    plan += install + list(changes)
    running = facts["services"].get(d.service)
    if plan or not (running and running.active == "active"):
        plan.append(_activation(host, inventory, d.service))
    return plan


def _activation(host: HostModel, inventory: Inventory, service: str) -> CommandChange:
    """Restart dnsmasq and wait until it answers for the DNS server's own name with the right address."""
    unit, address = shlex.quote(service), shlex.quote(str(host.address))
    name, wanted = f"dns.{inventory.defaults.host_domain}", str(inventory.dns_primary.address)
    wait = (f"for i in $(seq {WAIT_SECONDS * 5}); do [ \"$(dig +short +time=1 +tries=1 A {shlex.quote(name)} @{address})\" "
            f"= {shlex.quote(wanted)} ] && exit 0; sleep 0.2; done; echo 'dnsmasq does not answer for {name}' >&2; "
            f"journalctl -u {unit} -n 5 --no-pager -q -o cat >&2; exit 1")
    return CommandChange("restart dnsmasq and wait until it answers",
                         [f"systemctl enable {unit} >/dev/null 2>&1; systemctl restart {unit}", wait],
                         value_diff("dnsmasq", "previous configuration", "serving the names above"),
                         undo_files_on_failure=True, recover=[f"systemctl restart {unit}"])


def run(remote, host: HostModel, ctx: RunContext) -> StageReport:
    facts = remote.gather(probes())
    platform = platform_for(facts["os"])
    wanted = [DesiredFile(platform.dnsmasq.conf, render_conf(host, ctx.inventory),
                          validate="dnsmasq --test --conf-file={path}")]
    changes = file_changes(remote, wanted, facts["files"])
    report = StageReport(notes=[f"dnsmasq serves {len(records(ctx.inventory))} names on {host.address}"])
    return apply_plan(remote, decide(host, ctx.inventory, facts, platform, changes), ctx, report)


def _backend_is_dnsmasq(host: HostModel, inventory: Inventory) -> bool:
    return inventory.defaults.dns.backend == "dnsmasq"


STAGE = Stage(name="dnsmasq", title="dnsmasq on every proxy host", groups=("proxy",), run=run,
              select=_backend_is_dnsmasq, checks="test_dns.py")
