"""etcd, checked on each member as the tutorial checks it, over TLS with the client certificate."""

import json
from shlex import quote

from groundwork.tasks.etcd import client_url, etcdctl, member_name, peer_sans
from groundwork.verify import reads

GROUPS = ("etcd",)


def cluster_state(host, session) -> str:
    return f"{etcdctl(host)} endpoint health --cluster -w json; echo; {etcdctl(host)} member list -w json"


def write_and_read_back(host, session) -> str:
    """A key written through this member, then read through every other member."""
    key = quote(f"/groundwork/check/{session.meta.run_id}/{host.name}")
    others = [m for m in session.inventory.group_members("etcd") if m.name != host.name]
    reads = "; ".join(f"echo \"read {m.name} $({etcdctl(host, [client_url(m)])} get --print-value-only {key})\""
                      for m in others)
    return f"{etcdctl(host)} put {key} {quote(host.name)} >/dev/null && echo written; {reads}"


def refusals(host, session) -> str:
    """A TLS client without a certificate, plain http on the member's address, and (as a control) a client
    with the certificate; wget, a base tool of every host, fails on any HTTP error answer too."""
    e = host.settings.etcd
    url = client_url(host) + "/version"
    plain = f"http://{host.address}:{e.client_port}/version"
    loopback = f"http://127.0.0.1:{e.client_port}/version"
    wget = f"wget -q -O /dev/null -T 3 -t 1 --ca-certificate={quote(e.cert_dir + '/ca.pem')}"
    with_cert = (f"--certificate={quote(e.cert_dir + '/client.pem')} "
                 f"--private-key={quote(e.cert_dir + '/client-key.pem')}")
    return (f"{wget} {quote(url)}; echo \"no-cert=$?\"; wget -q -O /dev/null -T 3 -t 1 {quote(plain)}; "
            f"echo \"plain-http=$?\"; wget -q -O /dev/null -T 3 -t 1 {quote(loopback)}; echo \"loopback-http=$?\"; "
            f"{wget} {with_cert} {quote(url)}; echo \"with-cert=$?\"")


def certificate(host, session) -> str:
    d = host.settings.etcd.cert_dir
    return (f"openssl verify -CAfile {quote(d + '/ca.pem')} {quote(d + '/etcd-peer.pem')}; "
            f"openssl x509 -in {quote(d + '/etcd-peer.pem')} -noout -subject -ext subjectAltName")


def health_and_members(text: str) -> tuple[list[dict], list[dict]]:
    """`endpoint health --cluster -w json` then `member list -w json`, as cluster_state prints them."""
    health_text, _, members_text = text.partition("\n{")
    try:
        health = json.loads(health_text.strip() or "[]")
        members = json.loads("{" + members_text).get("members", []) if members_text else []
    except ValueError:
        return [], []
    return health, members


@reads(cluster_state)
def test_the_member_answers_the_cluster_has_quorum_and_its_members_are_the_inventorys(host, probe, inventory,
                                                                                       session):
    """this member answers over TLS, the cluster has quorum, and its members are the inventory's group etcd"""
    health, members = health_and_members(probe.run(cluster_state(host, session)).stdout)
    # --cluster asks every advertised URL: each member's address, over TLS.
    tls = {client_url(m) for m in inventory.group_members("etcd")}
    health = [e for e in health if e.get("endpoint") in tls]
    mine = [e for e in health if e.get("endpoint") == client_url(host)]
    assert mine and mine[0].get("health"), f"{member_name(host)} does not answer over TLS on {client_url(host)}"
    healthy = [e["endpoint"] for e in health if e.get("health")]
    assert len(healthy) * 2 > len(health), f"no quorum: healthy {healthy} of {len(health)} members"
    names = sorted(m.get("name", "") for m in members)
    wanted = sorted(member_name(m) for m in inventory.group_members("etcd"))
    assert names == wanted, f"members {names}; the inventory's group etcd: {wanted}"


@reads(cluster_state, write_and_read_back)  # the cluster's state shared with the check above
def test_a_key_written_here_is_read_on_every_other_member(host, probe, inventory, session):
    """a key written through this member reads back through every other healthy member (a member that does not
    answer fails its own checks)"""
    health, _ = health_and_members(probe.run(cluster_state(host, session)).stdout)
    healthy = {e.get("endpoint") for e in health if e.get("health")}
    lines = probe.run(write_and_read_back(host, session)).stdout.splitlines()
    assert "written" in lines, f"writing through {member_name(host)} failed"
    others = [m.name for m in inventory.group_members("etcd") if m.name != host.name and client_url(m) in healthy]
    missing = [name for name in others if f"read {name} {host.name}" not in lines]
    assert not missing, f"not read back through: {', '.join(missing)}"


@reads(refusals)
def test_no_client_without_a_certificate_and_no_plain_http_on_the_members_address(host, probe, session):
    """a TLS client without a certificate is refused, plain http on the member's address and on 127.0.0.1 is
    refused (no local user reads etcd unauthenticated), a client with the certificate is answered"""
    status = dict(line.split("=", 1) for line in probe.run(refusals(host, session)).stdout.splitlines()
                  if "=" in line and line.split("=", 1)[0] in ("no-cert", "plain-http", "loopback-http", "with-cert"))
    assert status.get("with-cert") == "0", "a client with the certificate is not answered either"
    assert status.get("no-cert") not in (None, "0"), "a TLS client without a certificate is answered"
    assert status.get("plain-http") not in (None, "0"), "plain http on the member's address is answered"
    assert status.get("loopback-http") not in (None, "0"), "plain http on 127.0.0.1 is answered, to any local user"


@reads(certificate)
def test_the_member_certificate_verifies_against_ca_pem_with_every_members_address(host, probe, inventory, session):
    """etcd-peer.pem verifies against ca.pem and names every member's address"""
    result = probe.run(certificate(host, session))
    assert ": OK" in result.stdout, f"etcd-peer.pem does not verify against ca.pem: {result.stdout}{result.stderr}"
    missing = [a for a in peer_sans(inventory) if f"IP Address:{a}" not in result.stdout]
    assert not missing, f"SANs lack {', '.join(missing)}"
