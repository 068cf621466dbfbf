"""DNS with dnsmasq on every proxy host, seed 002's "使用dnsmasq" in place of bind9 (`dns.backend: dnsmasq`).

Every proxy host serves the same names on its own address: host.com (every inventory host and `dns`) and od.com
(`dns`, the registry's name, extra records), every host's address back to its FQDN, from one generated file checked with `dnsmasq --test` before a
restart, put back when dnsmasq does not come up on it. There are no zone transfers and no serials. A host that
ran bind9 has named stopped and disabled first, so that the two never fight over port 53 (the bind9 stages do
the same to dnsmasq when the backend goes back).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from groundwork import facts as probes
from groundwork.changes import (Change, CommandChange, DesiredFile, activate_service,
                                file_changes, journal_tail, stop_and_disable, value_diff, wait_until, wanted_digests)
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import PLATFORMS, Platform, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import Stage

WAIT_SECONDS = 10


@dataclass(frozen=True)
class DnsmasqLayout:
    packages: tuple[str, ...] = ("dnsmasq",)
    # Both families read /etc/dnsmasq.d (Debian's CONFIG_DIR, EL's conf-dir).
    conf: str = "/etc/dnsmasq.d/groundwork.conf"
    service: str = "dnsmasq"


# Both families read /etc/dnsmasq.d (Debian's CONFIG_DIR, EL's conf-dir): one layout.
DNSMASQ = {"debian": DnsmasqLayout(), "el": DnsmasqLayout()}
NAMED = "named"  # bind9's unit on both families, stopped while dnsmasq serves


def records(inventory: Inventory) -> list[tuple[str, str]]:
    """(FQDN, address) for every record of both zones, as dnsmasq's address=/NAME/IP lines take them."""
    return [(f"{name.lower()}.{zone}", str(address)) for zone, named in inventory.zones().items()
            for name, address in named.items()]


def pointers(inventory: Inventory) -> list[tuple[str, str]]:
    """(reverse name, FQDN) for every host's address, as dnsmasq's ptr-record=NAME,TARGET lines take them."""
    return [(f"{octet}.{zone}", fqdn) for zone, named in inventory.reverse_zones().items()
            for octet, fqdn in named.items()]


def render_conf(host: HostModel, inventory: Inventory) -> bytes:
    dns = inventory.defaults.dns
    return render("dns/dnsmasq.conf.j2", listen=str(host.address), record_ttl=dns.record_ttl,
                  forwarders=[str(f) for f in dns.forwarders], zones=inventory.zone_names(), records=records(inventory),
                  pointers=pointers(inventory))


def desired_files(host: HostModel, inventory: Inventory, platform: Platform) -> list[DesiredFile]:
    return [DesiredFile(DNSMASQ[platform.family].conf, render_conf(host, inventory),
                        validate="dnsmasq --test --conf-file={path}")]


def server_probes(host: HostModel, inventory: Inventory) -> list[probes.Probe]:
    layouts = list(DNSMASQ.values())
    wanted = wanted_digests(*(desired_files(host, inventory, pl) for pl in PLATFORMS.values()))
    return [probes.os_info(), probes.packages(sorted({p for d in layouts for p in d.packages})),
            probes.services(sorted({"named", *(d.service for d in layouts)})),
            probes.files(sorted({d.conf for d in layouts}), read_unless=wanted)]


def decide(host: HostModel, inventory: Inventory, facts: Facts) -> list[Change]:
    platform = platform_for(facts["os"])
    d = DNSMASQ[platform.family]
    changes = file_changes(desired_files(host, inventory, platform), facts["files"])
    # named first: the two never fight over port 53
    plan = stop_and_disable(facts["services"], NAMED, "the dns backend is dnsmasq")
    plan += install_missing(platform, list(d.packages), facts["packages"]) + list(changes)
    if plan or not facts["services"].settled(d.service):
        plan.append(_activation(host, inventory, d.service))
    return plan


def _activation(host: HostModel, inventory: Inventory, service: str) -> CommandChange:
    """Restart dnsmasq and wait until it answers for the DNS server's own name with the right address."""
    address = shlex.quote(str(host.address))
    name, wanted = f"dns.{inventory.defaults.host_domain}", str(inventory.dns_primary.address)
    answer = f"dig +short +time=1 +tries=1 A {shlex.quote(name)} @{address}"
    wait = wait_until(f"[ \"$({answer})\" = {shlex.quote(wanted)} ]", WAIT_SECONDS, f"dnsmasq does not answer for {name}", diagnose=journal_tail(service))
    return activate_service(service, "restart dnsmasq and wait until it answers",
                            value_diff("dnsmasq", "previous configuration", "serving the names above"), waits=[wait],
                            recover=[f"systemctl restart {shlex.quote(service)}"])


def _backend_is_dnsmasq(host: HostModel, inventory: Inventory) -> bool:
    return inventory.defaults.dns.backend == "dnsmasq"


STAGE = Stage(name="dnsmasq", title="dnsmasq on every proxy host", groups=("proxy",),
              needs=("host_prep",),
              select=_backend_is_dnsmasq, checks="test_dns.py",
              probes=lambda host, ctx: server_probes(host, ctx.inventory),
              decide=lambda host, facts, ctx, notes: decide(host, ctx.inventory, facts),
              notes=lambda host, ctx: [f"dnsmasq serves {len(records(ctx.inventory))} names on {host.address}"])
