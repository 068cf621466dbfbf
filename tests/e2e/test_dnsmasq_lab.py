"""seed 002's DNS: `dns.backend: dnsmasq` on both proxy hosts, switched to and back from bind9 in the lab."""

from tests.e2e.conftest import inventory_copy
from tests.e2e.test_dns_lab import dig


def state(lab, host: str, unit: str) -> str:
    return lab.ssh(host, f"echo $(systemctl is-active {unit}) $(systemctl is-enabled {unit})", check=False).strip()


def test_switching_to_dnsmasq_and_back_stops_the_other_server_and_verifies_green(converged, runbook, tmp_path):
    lab = converged
    with_dnsmasq = inventory_copy(tmp_path, lambda name, data: data["data"]["dns"].update(backend="dnsmasq")
                                  if name == "defaults.yaml" else None)
    run = runbook("-i", with_dnsmasq, name="dns")
    assert run.rc == 0, run
    assert set(run.statuses("dnsmasq")) == {"hdss7-11", "hdss7-12"} and run.statuses("dns_primary") == {}
    serials = [c for c in run.record["checks"] if c["title"] == "the SOA serial of each zone equals the primary's"]
    assert {c["outcome"] for c in serials} == {"skipped"} and "zone serials are bind9's" in serials[0]["message"]
    for proxy in ("hdss7-11", "hdss7-12"):
        assert state(lab, proxy, "named") == "inactive disabled"
        assert state(lab, proxy, "dnsmasq") == "active enabled"
    for server in ("10.4.7.11", "10.4.7.12"):
        assert dig(lab, "hdss7-22.host.com", server) == "10.4.7.22"
        assert dig(lab, "harbor.od.com", server) == "10.4.7.200"
        assert dig(lab, "nosuchhost.host.com", server) == ""  # local to dnsmasq: no answer, not forwarded
        assert dig(lab, "22.7.4.10.in-addr.arpa", server, "PTR") == "hdss7-22.host.com."
    assert "1 received" in lab.ssh("hdss7-21", "ping -c 1 hdss7-200")

    again = runbook("-i", with_dnsmasq, name="dns")
    assert again.rc == 0 and again.record["entries"] and {e["status"] for e in again.record["entries"]} == {"ok"}, again

    back = runbook(name="dns")
    assert back.rc == 0, back
    assert {c["outcome"] for c in back.record["checks"]} == {"passed"}, back
    for proxy in ("hdss7-11", "hdss7-12"):
        assert state(lab, proxy, "dnsmasq") == "inactive disabled"
        assert state(lab, proxy, "named") == "active enabled"
    assert dig(lab, "hdss7-22.host.com", "10.4.7.12") == "10.4.7.22"
