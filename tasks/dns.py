"""DNS, the seeds' "bind9安装部署（DNS服务）": bind9 on the proxy hosts, resolvers on every host.

The first proxy host is the primary of the zones host.com (every inventory host, as HDSS7-NN, and `dns`) and
od.com (`dns`, the registry's name on the ops host, extra records from inventory), and of the reverse zones
of the hosts' addresses (each address back to its host's FQDN, as kubeadm's preflight would like names to
resolve both ways; the seeds serve none); the other proxy hosts are
secondaries that transfer the zones, so names keep resolving without the primary. Every host then resolves
through those servers with search domain host.com.

Three steps run in this order: the primary, then the secondaries (a secondary that loads before its primary
serves waits out BIND's retry timer), then every host's resolver.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from groundwork import facts as probes
from groundwork.changes import (Change, CommandChange, DesiredFile, activate_service, file_changes, journal_tail,
                                stop_and_disable, value_diff, wait_until, wanted_digests)
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import Platform, candidate_platforms, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import Stage
from groundwork.tasks import dnsmasq

SERIAL_LINE = re.compile(rb"^(\s*)(\d+)(\s*; serial)$", re.M)
RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_DROPIN = "/etc/systemd/resolved.conf.d/groundwork.conf"
NM_DROPIN = "/etc/NetworkManager/conf.d/90-groundwork-dns.conf"
RESOLVER_MANAGERS = ("systemd-resolved", "NetworkManager")


@dataclass(frozen=True)
class BindLayout:
    packages: tuple[str, ...]
    main_conf: str  # the file named reads first; checked whole with named-checkconf -z
    options_conf: str  # where the options block goes (the whole named.conf on EL)
    zones_conf: str  # where groundwork's zone statements go
    zone_dir: str
    group: str  # named's group, which must read the zone files
    directory: str  # named's working directory (options { directory })
    # Files named.conf includes besides groundwork's zones, where the options file is the whole named.conf (EL).
    includes: tuple[str, ...] = ()
    service: str = "named"


# What differs for bind9 between the families.
BIND = {
    "debian": BindLayout(("bind9", "bind9-utils", "bind9-dnsutils"), "/etc/bind/named.conf",
                         "/etc/bind/named.conf.options", "/etc/bind/named.conf.local", "/var/lib/bind", "bind",
                         directory="/var/cache/bind"),
    "el": BindLayout(("bind", "bind-utils"), "/etc/named.conf", "/etc/named.conf", "/etc/named.groundwork.zones",
                     "/var/named", "named", directory="/var/named",
                     includes=("/etc/named.rfc1912.zones", "/etc/named.root.key")),
}


def render_zone(inventory: Inventory, zone: str, serial: int) -> bytes:
    """A forward zone's A records, or a reverse zone's PTR records (its name server named in the host zone)."""
    dns = inventory.defaults.dns
    forward = inventory.zones()
    return render("dns/zone.j2", zone=zone, serial=serial, ttl=dns.ttl, record_ttl=dns.record_ttl,
                  domain=zone if zone in forward else inventory.defaults.host_domain,
                  records=forward.get(zone, {}), pointers=inventory.reverse_zones().get(zone, {}))


def zone_serial(content: bytes | None) -> int | None:
    found = SERIAL_LINE.search(content or b"")
    return int(found.group(2)) if found else None


def without_serial(content: bytes | None) -> bytes | None:
    return None if content is None else SERIAL_LINE.sub(rb"\1SERIAL\3", content)


def next_serial(in_service: list[int | None], today: str) -> int:
    """YYYYMMDDNN: today's first number, unless a serial in service is already that far or further, then one more."""
    first_today = int(today + "01")
    known = [s for s in in_service if s is not None]
    return max([first_today] + [s + 1 for s in known])


def soa_serials(zone_names: list[str], server: str) -> probes.Probe:
    """The serial each zone has in service on a DNS server, None where it does not answer."""
    script = (f"for z in {' '.join(shlex.quote(z) for z in zone_names)}; do "
              f"echo \"$z=$(dig +short +time=1 +tries=1 SOA \"$z\" @{shlex.quote(server)} | cut -d' ' -f3)\"; done")

    def parse(text: str) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for line in text.splitlines():
            zone, _, serial = line.partition("=")
            out[zone] = int(serial) if serial.strip().isdigit() else None
        return out
    return probes.Probe(f"soa@{server}", script, parse)


def _server_probes(host: HostModel, inventory: Inventory, primary: bool,
                   family: str | None = None) -> list[probes.Probe]:
    platforms = candidate_platforms(family)
    bind_packages = sorted({p for pl in platforms for p in BIND[pl.family].packages})
    conf_files = sorted({f for pl in platforms for f in (BIND[pl.family].options_conf, BIND[pl.family].zones_conf)})
    # Zone files are always read: their serial and content decide the next serial.
    zone_files = [f"{BIND[pl.family].zone_dir}/{z}.zone" for pl in platforms for z in inventory.zone_names()]
    named = wanted_digests(*(_named_conf_files(host, inventory, pl, primary) for pl in platforms))
    services = sorted({"named", *(d.service for d in dnsmasq.DNSMASQ.values())})
    return [probes.os_info(), probes.packages(bind_packages), probes.services(services),
            probes.files(conf_files + zone_files, read_unless=named),
            soa_serials(inventory.zone_names(), str(host.address)),
            soa_serials(inventory.zone_names(), str(inventory.dns_primary.address))]


def _named_conf_files(host: HostModel, inventory: Inventory, platform: Platform, primary: bool) -> list[DesiredFile]:
    bind = BIND[platform.family]
    listen = str(host.address)
    options = render("dns/options.conf.j2", listen=listen, directory=bind.directory, includes=bind.includes,
                     forwarders=[str(f) for f in host.settings.dns.forwarders], zones_conf=bind.zones_conf)
    zone_conf = render("dns/zones.conf.j2", primary=primary, zones=inventory.zone_names(), zone_dir=bind.zone_dir,
                       secondaries=[str(h.address) for h in inventory.dns_secondaries],
                       primary_address=str(inventory.dns_primary.address))
    return [DesiredFile(bind.options_conf, options, group=bind.group, validate="named-checkconf {path}"),
            DesiredFile(bind.zones_conf, zone_conf, group=bind.group, validate="named-checkconf {path}")]


def _activation(host: HostModel, platform: Platform, facts: Facts, wait_for: dict[str, int],
                actions: list[str] | None = None, summary: str = "") -> CommandChange:
    """Check the whole configuration, then reload (or start) named, then wait until it serves the serials."""
    bind = BIND[platform.family]
    # Not running when the facts were gathered: the package install may have started it on its defaults since.
    reload = facts["services"].running(bind.service)
    address = shlex.quote(str(host.address))

    def serves(zone: str) -> str:
        return f"dig +short +time=1 +tries=1 SOA {shlex.quote(zone)} @{address} | cut -d' ' -f3"
    waits = [wait_until(f"[ \"$({serves(z)})\" = {serial} ]", 10, f"named does not serve {z} serial {serial}",
                        diagnose=f"echo \"it serves '$({serves(z)})'\" >&2; {journal_tail(bind.service)}")
             for z, serial in wait_for.items()]
    # named keeps serving its loaded configuration when the check fails first; it is started again only if the
    # reload or start itself took it down.
    summary = summary or f"check the configuration and {'reload' if reload else 'start'} named"
    return activate_service(bind.service, summary,
                            value_diff("named", "previous configuration", "configuration above, checked and loaded"),
                            check=f"named-checkconf -z {shlex.quote(bind.main_conf)}",
                            start=" && ".join(actions) if actions else ("rndc reload" if reload else None), waits=waits)


def primary_files(host: HostModel, inventory: Inventory, facts: Facts, platform: Platform,
                  today: str) -> tuple[list[DesiredFile], dict[str, int]]:
    """The primary's files, zone serials raised only where content changed, and those serials."""
    bind = BIND[platform.family]
    wanted = _named_conf_files(host, inventory, platform, primary=True)
    serials: dict[str, int] = {}
    for zone in inventory.zone_names():
        path = f"{bind.zone_dir}/{zone}.zone"
        current = facts["files"].get(path) and facts["files"][path].content
        in_service = facts[f"soa@{host.address}"].get(zone)
        if current is not None and without_serial(current) == without_serial(render_zone(inventory, zone, 0)):
            serials[zone] = zone_serial(current) or 0
            content = current
        else:
            serials[zone] = next_serial([zone_serial(current), in_service], today)
            content = render_zone(inventory, zone, serials[zone])
        wanted.append(DesiredFile(path, content, group=bind.group, validate=f"named-checkzone {zone} {{path}}"))
    return wanted, serials


def _plan_server(host, facts, platform, desired: list[DesiredFile], wait_for) -> list[Change]:
    plan = stop_and_disable(facts["services"], dnsmasq.DNSMASQ[platform.family].service, "the dns backend is bind9")
    plan += install_missing(platform, list(BIND[platform.family].packages), facts["packages"])
    plan += file_changes(desired, facts["files"])
    serving = all(facts[f"soa@{host.address}"].get(z) == s for z, s in wait_for.items())
    if plan or not facts["services"].settled(BIND[platform.family].service) or not serving:
        plan.append(_activation(host, platform, facts, wait_for))
    return plan


def decide_primary(host: HostModel, inventory: Inventory, facts: Facts, today: str, notes: list[str]) -> list[Change]:
    """Serve the zones from the inventory, a zone's serial raised only when its content changed."""
    platform = platform_for(facts["os"])
    wanted, serials = primary_files(host, inventory, facts, platform, today)
    notes.append(f"primary of {', '.join(f'{z} (serial {s})' for z, s in serials.items())}")
    return _plan_server(host, facts, platform, wanted, serials)


def decide_secondary(host: HostModel, inventory: Inventory, facts: Facts, notes: list[str]) -> list[Change]:
    """Follow the primary's serials: configure and start named, or ask for the zones the host is behind on."""
    platform = platform_for(facts["os"])
    desired = _named_conf_files(host, inventory, platform, primary=False)
    primary = facts[f"soa@{inventory.dns_primary.address}"]
    if any(s is None for s in primary.values()):
        notes.append(f"the primary {inventory.dns_primary.address} does not answer for every zone; "
                     "this secondary keeps what it has")
        wait_for = {z: s for z, s in primary.items() if s is not None}
    else:
        wait_for = dict(primary)
        notes.append(f"secondary of {inventory.dns_primary.name}: "
                     + ", ".join(f"{z} (serial {s})" for z, s in wait_for.items()))
    plan = _plan_server(host, facts, platform, desired, wait_for)
    stale = [z for z, s in wait_for.items() if facts[f"soa@{host.address}"].get(z) not in (None, s)]
    if stale and len(plan) == 1 and facts["services"].running(BIND[platform.family].service):
        # Running and configured, only behind the primary: ask for those zones now, rather than reloading
        # and waiting for the next refresh.
        transfer = _activation(host, platform, facts, {z: wait_for[z] for z in stale},
                               actions=[f"rndc retransfer {shlex.quote(z)}" for z in stale],
                               summary=f"transfer {', '.join(stale)} from the primary")
        transfer.diff = "".join(value_diff(f"{z} serial", str(facts[f'soa@{host.address}'].get(z)),
                                           str(wait_for[z])) for z in stale)
        plan = [transfer]
    return plan


def dns_servers(inventory: Inventory) -> list[str]:
    return [str(h.address) for h in inventory.group_members("proxy")]


def resolver_probes(servers: list[str], search: str) -> list[probes.Probe]:
    """The resolver managers, and the resolver's files unless as wanted (the host's resolver is pointed at the DNS
    servers the way its OS manages it)."""
    # Every file a resolver manager may want, for the digests: the managers are known only from the gather.
    candidates = resolver_files(servers, search, Services()) + resolver_files(
        servers, search, Services({m: ServiceInfo(True, "active", "enabled") for m in RESOLVER_MANAGERS}))
    return [probes.services(list(RESOLVER_MANAGERS)),
            probes.files([RESOLV_CONF, RESOLVED_DROPIN, NM_DROPIN], read_unless=wanted_digests(candidates))]



def resolver_files(servers: list[str], search: str, managers: Services) -> list[DesiredFile]:
    """systemd-resolved's drop-in where it runs; else resolv.conf, with NetworkManager told to leave it alone."""
    if managers.running("systemd-resolved"):
        return [DesiredFile(RESOLVED_DROPIN, render("dns/resolved.conf.j2", servers=servers, search=search))]
    wanted = [DesiredFile(RESOLV_CONF, render("dns/resolv.conf.j2", servers=servers, search=search))]
    if managers.running("NetworkManager"):
        # NetworkManager would write resolv.conf over ours; dns=none leaves it to us.
        wanted.insert(0, DesiredFile(NM_DROPIN, b"# Managed by groundwork (dns)\n[main]\ndns=none\n"))
    return wanted


def decide_resolver(host: HostModel, servers: list[str], facts: Facts) -> list[Change]:
    """The files that differ, and the resolver manager told about them."""
    managers = facts["services"]
    changes = file_changes(resolver_files(servers, host.settings.host_domain, managers), facts["files"])
    plan: list[Change] = list(changes)
    written = {c.want.path for c in changes}
    if RESOLVED_DROPIN in written:
        plan.append(CommandChange("restart systemd-resolved", ["systemctl restart systemd-resolved"],
                                  value_diff("systemd-resolved", "previous servers", ", ".join(servers))))
    if NM_DROPIN in written:
        plan.insert(1, CommandChange("reload NetworkManager", ["systemctl reload NetworkManager"],
                                     value_diff("NetworkManager dns", "managed", "none")))
    return plan


def _is_primary(host: HostModel, inventory: Inventory) -> bool:
    return inventory.defaults.dns.backend == "bind9" and host.name == inventory.dns_primary.name


def _is_secondary(host: HostModel, inventory: Inventory) -> bool:
    return inventory.defaults.dns.backend == "bind9" and host.name != inventory.dns_primary.name


PRIMARY = Stage(name="dns_primary", title="bind9 primary", groups=("proxy",), select=_is_primary, checks="test_dns.py",
                needs=("host_prep",),
                probes=lambda host, ctx: _server_probes(host, ctx.inventory, True, ctx.family(host.name)),
                # a zone's new serial takes the plan's date
                decide=lambda host, facts, ctx, notes: decide_primary(host, ctx.inventory, facts,
                                                                      ctx.plan_time.strftime("%Y%m%d"), notes))
SECONDARIES = Stage(name="dns_secondary", title="bind9 secondaries", groups=("proxy",), select=_is_secondary,
                    needs=("host_prep", "dns_primary"),
                    checks="test_dns.py",
                    probes=lambda host, ctx: _server_probes(host, ctx.inventory, False, ctx.family(host.name)),
                    decide=lambda host, facts, ctx, notes: decide_secondary(host, ctx.inventory, facts, notes))
RESOLVERS = Stage(name="resolver", title="resolvers through the DNS servers", groups=None, checks="test_dns.py",
                  needs=("host_prep", "dns_primary", "dns_secondary", "dnsmasq"),
                  probes=lambda host, ctx: resolver_probes(dns_servers(ctx.inventory), host.settings.host_domain),
                  decide=lambda host, facts, ctx, notes: decide_resolver(host, dns_servers(ctx.inventory), facts),
                  notes=lambda host, ctx: [f"resolves through {', '.join(dns_servers(ctx.inventory))}, search "
                                           f"{host.settings.host_domain}"])
STAGES = [PRIMARY, SECONDARIES, dnsmasq.STAGE, RESOLVERS]
