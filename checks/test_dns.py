"""DNS, checked as the seeds check it by hand: dig against each server, then names and ping from every host."""

from shlex import quote

import dns.message
import dns.query
import dns.rdatatype
import pytest

from groundwork.verify import reads

GROUPS = None  # per check below
RESOLVER = "cat /etc/resolv.conf; resolvectl dns 2>/dev/null; resolvectl domain 2>/dev/null; true"
# The first address getent gives (one process: the shell keeps the first word itself).
LOOKUP = "getent ahostsv4 {0}"


def mesh(host, session) -> str:
    return mesh_script(host, session.inventory)


def mesh_script(host, inventory) -> str:
    """From this host, for every other host: its FQDN and short name resolved, and ping to its address, one
    line per peer: `peer NAME fqdn=ADDRESS short=ADDRESS ping=ok|none`. Cheap on each host, since every host
    runs it at once: one getent for all FQDNs and one for all short names (a name missing from either is
    then looked up on its own, with one retry: an answer lost while every host of a large inventory asks at
    once is load, not a fault), and a ping per peer in parallel, with one retry."""
    peers = [h for h in inventory.hosts.values() if h.name != host.name]
    if not peers:
        return "true"
    names, fqdns, addresses = ([str(value) for value in values] for values in
                               zip(*((p.name, p.fqdn, p.address) for p in peers)))
    args = lambda values: " ".join(map(quote, values))  # noqa: E731
    # getent prints the canonical name on the first line of each name it found, and only there: one address
    # per name, in the order asked, when it found them all.
    resolve = ("resolve() { out=$(getent ahostsv4 \"$@\") && { printf '%s\\n' \"$out\" | awk 'NF == 3 {print $1}'; "
               "return; }; for n in \"$@\"; do a=$(getent ahostsv4 \"$n\" || { sleep 1; getent ahostsv4 \"$n\"; }); "
               "echo \"${a%%[ \t]*}\"; done; }; ")
    ping = ("for a in " + args(addresses) + "; do { ping -c 1 -W 2 \"$a\" >/dev/null 2>&1 || ping -c 1 -W 2 \"$a\" "
            ">/dev/null 2>&1; } && echo \"$a ok\" || echo \"$a none\" & done; wait")
    join = ("awk -v f=\"$F\" -v s=\"$S\" -v p=\"$P\" -v names=" + quote(" ".join(names)) + " -v addresses=" + quote(" ".join(addresses))
            + " 'BEGIN { split(f, F, \"\\n\"); split(s, S, \"\\n\"); n = split(names, N, \" \"); "
            "split(addresses, A, \" \"); m = split(p, P, \"\\n\"); for (i = 1; i <= m; i++) { split(P[i], x, \" \"); "
            "answer[x[1]] = x[2] }; for (i = 1; i <= n; i++) print \"peer\", N[i], \"fqdn=\" F[i], \"short=\" S[i], "
            "\"ping=\" (A[i] in answer ? answer[A[i]] : \"none\") }'")
    return f"{resolve}F=$(resolve {args(fqdns)}); S=$(resolve {args(names)}); P=$({ping}); {join}"


def mesh_problems(host, inventory, output: str) -> list[str]:
    """What the mesh script's lines say is wrong, naming each peer; a peer with no line is named too."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) == 5 and words[0] == "peer":
            found[words[1]] = dict(w.split("=", 1) for w in words[2:])
    problems = []
    for peer in (h for h in inventory.hosts.values() if h.name != host.name):
        seen = found.get(peer.name)
        if seen is None:
            problems.append(f"{peer.name}: no result (the lookup and ping did not finish)")
            continue
        wanted = str(peer.address)
        for key, name in (("fqdn", peer.fqdn), ("short", peer.name)):
            if seen[key] != wanted:
                problems.append(f"{name} resolves to {seen[key] or 'nothing'}, not {wanted}")
        if seen["ping"] != "ok":
            problems.append(f"ping {peer.name} ({seen['short'] or wanted}) gets no answer")
    return problems


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
    """every inventory FQDN and every od.com record answers with the expected address, and every host's
    address with its FQDN (PTR)"""
    asked = [(f"{name.lower()}.{zone}", "A", str(address))
             for zone, records in inventory.zones().items() for name, address in records.items()]
    asked += [(f"{octet}.{zone}", "PTR", f"{fqdn}.")
              for zone, pointers in inventory.reverse_zones().items() for octet, fqdn in pointers.items()]
    wrong = {}
    for name, rdtype, wanted in asked:
        got = query(probe, name, str(host.address), rdtype)
        if [g.lower() for g in got] != [wanted.lower()]:
            wrong[name] = got
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
    for zone in inventory.zone_names():
        ours = query(probe, zone, str(host.address), "SOA")
        if host.name == inventory.dns_primary.name:
            assert ours, f"{host.name} does not answer for {zone}"
            continue
        theirs = query(probe, zone, primary, "SOA")
        if not theirs:
            pytest.skip(f"the primary {primary} does not answer; its own check reports it")
        assert ours and ours[0].split()[2] == theirs[0].split()[2], \
            f"{zone}: serial here {ours[0].split()[2] if ours else 'none'}, primary {theirs[0].split()[2]}"


@reads(RESOLVER)
def test_resolver_points_at_the_dns_servers(host, probe, inventory):
    """the resolver uses the DNS servers with search domain host.com"""
    text = probe.run(RESOLVER).stdout
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


@reads(mesh)
def test_other_hosts_resolve_by_fqdn_and_short_name_and_answer_ping(host, probe, inventory):
    """every other host's FQDN and short name resolve, and the host answers ping"""
    problems = mesh_problems(host, inventory, probe.run(mesh_script(host, inventory)).stdout)
    assert not problems, f"{len(problems)} problem(s) from {host.name}: " + "; ".join(problems)
