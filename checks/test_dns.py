"""DNS, checked as the seeds check it by hand: dig against each server, then names and ping from every host."""

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tasks.dns import zones

GROUPS = None  # per check below


def query(probe, name: str, server: str, rdtype: str = "A") -> list[str]:
    """`dig -t TYPE NAME @SERVER +short`, asked from this machine with dnspython, recorded as evidence."""
    command = f"dig -t {rdtype} {name} @{server} +short"
    try:
        answer = dns.query.udp(dns.message.make_query(name, rdtype), server, timeout=2)
        values = sorted(rr.to_text() for rrset in answer.answer for rr in rrset
                        if rrset.rdtype == dns.rdatatype.from_text(rdtype))
        probe.record(command, 0, "\n".join(values))
        return values
    except Exception as exc:  # noqa: BLE001 - no answer is the evidence
        probe.record(command, 1, "", f"no answer: {exc or type(exc).__name__}")
        return []


@pytest.mark.groups("proxy")
def test_every_name_answers_on_this_dns_server(host, probe, inventory):
    """every inventory FQDN and every od.com record answers with the expected address"""
    wrong = {}
    for zone, records in zones(inventory).items():
        for name, address in records.items():
            fqdn = f"{name.lower()}.{zone}"
            got = query(probe, fqdn, str(host.address))
            if got != [str(address)]:
                wrong[fqdn] = got
            if probe.evidence[-1].rc != 0:  # the server does not answer: one timeout says it
                assert False, f"{host.address} does not answer DNS queries ({probe.evidence[-1].stderr})"
    assert not wrong, f"wrong or missing answers from {host.address}: {wrong}"


@pytest.mark.groups("proxy")
def test_zone_serials_equal_the_primary(host, probe, inventory):
    """the SOA serial of each zone equals the primary's"""
    if inventory.defaults.dns.backend != "bind9":
        pytest.skip(f"zone serials are bind9's: the {inventory.defaults.dns.backend} backend serves every name "
                    "from each proxy host, with no primary to follow")
    primary = str(inventory.dns_primary.address)
    for zone in zones(inventory):
        ours = query(probe, zone, str(host.address), "SOA")
        if host.name == inventory.dns_primary.name:
            assert ours, f"{host.name} does not answer for {zone}"
            continue
        theirs = query(probe, zone, primary, "SOA")
        if not theirs:
            pytest.skip(f"the primary {primary} does not answer; its own check reports it")
        assert ours and ours[0].split()[2] == theirs[0].split()[2], \
            f"{zone}: serial here {ours[0].split()[2] if ours else 'none'}, primary {theirs[0].split()[2]}"


def test_resolver_points_at_the_dns_servers(host, probe, inventory):
    """the resolver uses the DNS servers with search domain host.com"""
    text = probe.run("cat /etc/resolv.conf; resolvectl dns 2>/dev/null; resolvectl domain 2>/dev/null; true").stdout
    servers, domains = resolver_settings(text)
    assert host.settings.host_domain in domains, f"search domains {sorted(domains)}; wanted {host.settings.host_domain}"
    missing = [str(h.address) for h in inventory.group_members("proxy") if str(h.address) not in servers]
    assert not missing, f"not a nameserver: {missing} (nameservers: {sorted(servers)})"


def resolver_settings(text: str) -> tuple[set[str], set[str]]:
    """Name servers and search domains, each a whole word, from resolv.conf and `resolvectl dns`/`domain`
    ("Global: 10.4.7.11 10.4.7.12", "Link 2 (eth0): host.com")."""
    servers, domains = set(), set()
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"]:
            servers.update(words[1:2])
        elif words[:1] == ["search"]:
            domains.update(words[1:])
        elif line.startswith(("Global:", "Link ")) and ":" in line:
            for word in line.split(":", 1)[1].split():
                (servers if word[:1].isdigit() else domains).add(word.lstrip("~"))
    return servers, domains


def test_other_hosts_resolve_by_fqdn_and_short_name_and_answer_ping(host, probe, inventory):
    """every other host's FQDN and short name resolve, and the host answers ping"""
    others = [h for h in inventory.hosts.values() if h.name != host.name]
    # One retry for a name or a ping: a single answer lost while every host of a large inventory asks at
    # once is load, not a fault (at 50 hosts that is 4,900 lookups and 2,450 pings).
    lookup = "getent ahostsv4 {0} | head -n 1 | cut -d' ' -f1"
    script = "; ".join(f"a=$({lookup.format(name)}); [ -n \"$a\" ] || {{ sleep 1; a=$({lookup.format(name)}); }}; "
                       f"echo {name} $a" for h in others for name in (h.fqdn, h.name))
    script += "; " + "; ".join(f"{{ ping -c 1 -W 2 {h.name} || ping -c 1 -W 2 {h.name}; }} >/dev/null && "
                               f"echo ping {h.name} ok" for h in others)
    lines = set(probe.run(script).stdout.splitlines())
    problems = [f"{name} does not resolve to {h.address}" for h in others for name in (h.fqdn, h.name)
                if f"{name} {h.address}" not in lines]
    problems += [f"ping {h.name} gets no answer" for h in others if f"ping {h.name} ok" not in lines]
    assert not problems, "; ".join(problems)
