"""DNS end to end: bind9 primary and secondary on the proxy hosts, resolvers everywhere, failures kept safe."""

from tests.e2e.conftest import HOSTS, inventory_copy


def dig(lab, name: str, server: str, rdtype: str = "A", on: str = "hdss7-21") -> str:
    return lab.ssh(on, f"dig -t {rdtype} {name} @{server} +short +time=1 +tries=2").strip()


def serial(lab, zone: str, server: str = "10.4.7.11") -> int:
    return int(dig(lab, zone, server, "SOA").split()[2])


def test_names_answer_on_both_servers_and_hosts_ping_each_other(converged):
    lab = converged
    for server in ("10.4.7.11", "10.4.7.12"):
        assert dig(lab, "hdss7-21.host.com", server) == "10.4.7.21"
        assert dig(lab, "harbor.od.com", server) == "10.4.7.200"
        assert dig(lab, "dns.od.com", server) == "10.4.7.11"
        assert dig(lab, "200.7.4.10.in-addr.arpa", server, "PTR") == "hdss7-200.host.com."
    assert lab.ssh("hdss7-22", "getent hosts 10.4.7.21").split()[1] == "hdss7-21.host.com"
    assert "1 received" in lab.ssh("hdss7-21", "ping -c 1 hdss7-200")
    assert serial(lab, "host.com", "10.4.7.12") == serial(lab, "host.com", "10.4.7.11")


def test_second_run_changes_nothing_and_keeps_the_serial(converged, runbook):
    lab = converged
    before = (serial(lab, "host.com"), serial(lab, "od.com"))
    run = runbook()
    assert run.rc == 0, run
    for stage in ("dns_primary", "dns_secondary", "resolver"):
        assert set(run.statuses(stage).values()) == {"ok"}, run
    assert (serial(lab, "host.com"), serial(lab, "od.com")) == before


def test_a_host_added_to_the_inventory_raises_the_serial_one_step_and_resolves(converged, runbook, tmp_path):
    lab = converged
    before = serial(lab, "host.com")
    od_before = serial(lab, "od.com")

    def add_host(name, data):
        if name == "hosts.yaml":
            data["hdss7-23"] = {"hostname": "10.4.7.23", "groups": ["master_compute"]}
    run = runbook("-i", inventory_copy(tmp_path, add_host), "--group", "proxy", "--no-verify")
    try:
        assert run.rc == 0, run
        assert serial(lab, "host.com") == before + 1
        assert serial(lab, "od.com") == od_before  # its content did not change
        assert serial(lab, "host.com", "10.4.7.12") == before + 1
        for server in ("10.4.7.11", "10.4.7.12"):
            assert dig(lab, "hdss7-23.host.com", server) == "10.4.7.23"
            assert dig(lab, "23.7.4.10.in-addr.arpa", server, "PTR") == "hdss7-23.host.com."
    finally:
        back = runbook("--group", "proxy")
        assert back.rc == 0, back
    assert serial(lab, "host.com") == before + 2 and dig(lab, "hdss7-23.host.com", "10.4.7.12") == ""
    assert dig(lab, "23.7.4.10.in-addr.arpa", "10.4.7.12", "PTR") == ""


def test_names_resolve_everywhere_while_the_primary_is_down(converged):
    lab = converged
    lab.stop("hdss7-11")
    try:
        for host in HOSTS:
            if host == "hdss7-11":
                continue
            out = lab.ssh(host, "getent ahostsv4 hdss7-200.host.com | head -n 1; getent ahostsv4 hdss7-22 | head -n 1")
            assert out.split()[0] == "10.4.7.200" and "10.4.7.22" in out, (host, out)
    finally:
        lab.start("hdss7-11")


def test_named_stopped_fails_its_checks_on_that_host_only_and_a_run_starts_it(converged, runbook):
    lab = converged
    lab.ssh("hdss7-11", "systemctl stop named")
    check = runbook(name="verify")
    assert check.rc == 5, check
    failed = {(c["host"], c["title"]) for c in check.record["checks"] if c["outcome"] != "passed" and
              c["outcome"] != "skipped"}
    assert {h for h, _ in failed} == {"hdss7-11"}, failed
    answers = next(c for c in check.record["checks"] if c["host"] == "hdss7-11" and "expected address" in c["title"])
    assert answers["evidence"][0]["command"].startswith("dig -t A dns.host.com @10.4.7.11")
    assert answers["evidence"][0]["rc"] == 1

    fixed = runbook()
    assert fixed.rc == 0, fixed
    assert fixed.statuses("dns_primary") == {"hdss7-11": "changed"}
    assert lab.ssh("hdss7-11", "systemctl is-active named").strip() == "active"


def test_a_configuration_named_refuses_keeps_the_previous_files_and_named_answering(converged, runbook, tmp_path):
    lab = converged
    lab.ssh("hdss7-11", "cp /etc/bind/named.conf.default-zones /root/default-zones.good; "
                        "echo 'this-is-not-an-option yes;' >> /etc/bind/named.conf.default-zones")
    zone_before = lab.ssh("hdss7-11", "cat /var/lib/bind/od.com.zone")

    def add_record(name, data):
        if name == "defaults.yaml":
            data["data"]["dns"]["records"] = {"extra": "10.4.7.99"}
    try:
        run = runbook("-i", inventory_copy(tmp_path, add_record), "--group", "proxy", "--no-verify")
        assert run.rc == 4, run
        error = run.entry("hdss7-11", "dns_primary")["error"]
        assert "this-is-not-an-option" in error and "previous files restored" in error
        assert lab.ssh("hdss7-11", "cat /var/lib/bind/od.com.zone") == zone_before
        assert dig(lab, "harbor.od.com", "10.4.7.11") == "10.4.7.200"
        assert dig(lab, "extra.od.com", "10.4.7.11") == ""
    finally:
        lab.ssh("hdss7-11", "cp /root/default-zones.good /etc/bind/named.conf.default-zones")
