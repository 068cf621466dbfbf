"""DNS decisions as data: zone serials, zone content from the inventory, the rendered named files."""

import tempfile
from pathlib import Path

from groundwork.facts import Facts, OsInfo, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.platforms import PLATFORMS
from groundwork.tasks.dns import (BIND, NM_DROPIN, RESOLVED_DROPIN, _named_conf_files, decide_primary, decide_resolver,
                       decide_secondary, next_serial, primary_files, render_zone, without_serial, zone_serial)
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
PRIMARY = INVENTORY.dns_primary
REVERSE = "7.4.10.in-addr.arpa"  # the seeds' 10.4.7.0/24
DEBIAN = PLATFORMS["debian"]


def primary_facts(zone_files: dict, in_service: dict, named_files: bool = False) -> Facts:
    """The primary with these zone files; named's own files as wanted when named_files, else absent."""
    files = {path: on_host(content, group="bind") for path, content in zone_files.items()}
    if named_files:
        files.update({w.path: on_host(w.content, group="bind")
                      for w in _named_conf_files(PRIMARY, INVENTORY, DEBIAN, primary=True)})
    return Facts(os=OsInfo("debian", (), "12", "Debian 12", "6.1.0"), packages={p: "1" for p in BIND["debian"].packages},
                 files=files, services=Services({"named": ServiceInfo(True, "active", "enabled")}),
                 **{f"soa@{PRIMARY.address}": in_service})


def test_serial_is_todays_first_then_one_step_up():
    assert next_serial([None, None], "20261123") == 2026112301
    assert next_serial([2026112301, 2026112301], "20261123") == 2026112302
    assert next_serial([2026111905, None], "20261123") == 2026112301
    assert next_serial([2026119999, 2026112302], "20261123") == 2026120000  # already ahead of today


def test_host_zone_holds_every_inventory_host_as_in_the_seeds():
    text = render_zone(INVENTORY, "host.com", 2026112301).decode()
    assert "$ORIGIN host.com." in text and "2026112301 ; serial" in text
    assert "@       IN SOA\tdns.host.com. dnsadmin.host.com. (" in text
    for line in ("dns                A    10.4.7.11", "HDSS7-21           A    10.4.7.21",
                 "HDSS7-200          A    10.4.7.200"):
        assert line in text
    assert INVENTORY.zones()["od.com"] == {"dns": PRIMARY.address, "harbor": INVENTORY.ops_host.address}


def test_every_host_address_resolves_back_to_its_fqdn_from_the_reverse_zone_of_its_network():
    assert INVENTORY.zone_names() == ["host.com", "od.com", REVERSE]
    text = render_zone(INVENTORY, REVERSE, 2026112301).decode()
    assert f"$ORIGIN {REVERSE}." in text and "IN SOA\tdns.host.com. dnsadmin.host.com. (" in text
    assert "NS   dns.host.com." in text  # out of zone: named-checkzone wants no glue for it
    for line in ("21                 PTR  hdss7-21.host.com.", "200                PTR  hdss7-200.host.com."):
        assert line in text
    assert " A " not in text


def test_hosts_in_two_networks_get_a_reverse_zone_each(tmp_path):
    inventory = copy_seed_inventory(tmp_path)
    hosts = inventory / "hosts.yaml"
    hosts.write_text(hosts.read_text().replace("10.4.7.200", "10.4.8.200"))
    defaults = inventory / "defaults.yaml"
    defaults.write_text(defaults.read_text().replace("network: 10.4.7.0/24", "network: 10.4.0.0/16"))
    zones = load_inventory(inventory).reverse_zones()
    assert zones["8.4.10.in-addr.arpa"] == {"200": "hdss7-200.host.com"} and "200" not in zones[REVERSE]


def test_unchanged_zone_keeps_its_serial():
    files = {f"/var/lib/bind/{z}.zone": render_zone(INVENTORY, z, 2026112004) for z in INVENTORY.zone_names()}
    current = files["/var/lib/bind/host.com.zone"]
    wanted, serials = primary_files(PRIMARY, INVENTORY, primary_facts(files, {"host.com": 2026112004}), DEBIAN,
                                    "20261123")
    assert serials == {"host.com": 2026112004, "od.com": 2026112004, REVERSE: 2026112004}
    assert next(w for w in wanted if w.path.endswith("host.com.zone")).content == current


def test_changed_zone_gets_a_higher_serial_than_file_and_service():
    stale = render_zone(INVENTORY, "host.com", 2026112302).replace(b"10.4.7.22", b"10.4.7.99")
    facts = primary_facts({"/var/lib/bind/host.com.zone": stale}, {"host.com": 2026112303})
    wanted, serials = primary_files(PRIMARY, INVENTORY, facts, DEBIAN, "20261123")
    assert serials["host.com"] == 2026112304
    assert serials["od.com"] == 2026112301
    new = next(w for w in wanted if w.path.endswith("host.com.zone"))
    assert zone_serial(new.content) == 2026112304 and b"10.4.7.22" in new.content
    assert new.validate == "named-checkzone host.com {path}"
    assert without_serial(new.content) == without_serial(render_zone(INVENTORY, "host.com", 1))


def test_a_primary_already_serving_its_zones_gets_no_change_and_says_its_serials():
    files = {f"/var/lib/bind/{z}.zone": render_zone(INVENTORY, z, 2026112004) for z in INVENTORY.zone_names()}
    serving = dict.fromkeys(INVENTORY.zone_names(), 2026112004)
    notes = []
    assert decide_primary(PRIMARY, INVENTORY, primary_facts(files, serving, named_files=True), "20261123", notes) == []
    assert notes == [f"primary of host.com (serial 2026112004), od.com (serial 2026112004), {REVERSE} (serial "
                     "2026112004)"]


def test_a_primary_with_a_changed_zone_writes_it_then_reloads_and_waits_for_the_new_serial():
    files = {f"/var/lib/bind/{z}.zone": render_zone(INVENTORY, z, 2026112004) for z in INVENTORY.zone_names()}
    files["/var/lib/bind/host.com.zone"] = files["/var/lib/bind/host.com.zone"].replace(b"10.4.7.22", b"10.4.7.99")
    serving = dict.fromkeys(INVENTORY.zone_names(), 2026112004)
    plan = decide_primary(PRIMARY, INVENTORY, primary_facts(files, serving, named_files=True), "20261123", [])
    assert [c.summary for c in plan] == ["update /var/lib/bind/host.com.zone",
                                         "check the configuration and reload named"]
    assert "-HDSS7-22           A    10.4.7.99" in plan[0].diff and "2026112301 ; serial" in plan[0].diff
    assert plan[1].commands[1] == "rndc reload" and "= 2026112301 ]" in plan[1].commands[2]


def test_named_files_listen_on_the_host_and_transfer_to_secondaries():
    options, zones_conf = (f.content.decode() for f in _named_conf_files(PRIMARY, INVENTORY, DEBIAN, primary=True))
    assert "listen-on port 53 { 10.4.7.11; };" in options and "allow-query { any; };" in options
    assert "dnssec-validation no;" in options and "dnssec-enable" not in options.replace("`dnssec-enable no;`", "")
    assert "forwarders" not in options  # none in the inventory
    assert "allow-transfer { 10.4.7.12; };" in zones_conf and "also-notify { 10.4.7.12; };" in zones_conf
    secondary = INVENTORY.dns_secondaries[0]
    _, zones_conf = (f.content.decode() for f in _named_conf_files(secondary, INVENTORY, DEBIAN, primary=False))
    assert "type secondary;" in zones_conf and "primaries { 10.4.7.11; };" in zones_conf


# -- the secondaries and the resolvers, decided as data ---------------------------------------------------

SECONDARY = INVENTORY.hosts["hdss7-12"]


def secondary_facts(primary: dict, here: dict, named=ServiceInfo(True, "active", "enabled")) -> Facts:
    files = {w.path: on_host(w.content, group="bind")
             for w in _named_conf_files(SECONDARY, INVENTORY, DEBIAN, primary=False)}
    return Facts(os=OsInfo("debian", (), "12", "Debian 12", "6.1.0"), packages={p: "1" for p in BIND["debian"].packages},
                 files=files, services=Services({"named": named}),
                 **{f"soa@{PRIMARY.address}": primary, f"soa@{SECONDARY.address}": here})


def test_a_secondary_in_step_with_the_primary_gets_no_change():
    notes = []
    serials = {"host.com": 2026112301, "od.com": 2026112301}
    assert decide_secondary(SECONDARY, INVENTORY, secondary_facts(serials, serials), notes) == []
    assert notes == ["secondary of hdss7-11: host.com (serial 2026112301), od.com (serial 2026112301)"]


def test_a_secondary_behind_the_primary_asks_for_those_zones_now():
    plan = decide_secondary(SECONDARY, INVENTORY, secondary_facts({"host.com": 2026112302, "od.com": 2026112301},
                                                                  {"host.com": 2026112301, "od.com": 2026112301}),
                            [])
    assert [c.summary for c in plan] == ["transfer host.com from the primary"]
    assert plan[0].commands[1] == "rndc retransfer host.com"
    assert "-2026112301\n+2026112302" in plan[0].diff


def test_a_secondary_whose_primary_does_not_answer_keeps_what_it_has():
    notes = []
    plan = decide_secondary(SECONDARY, INVENTORY, secondary_facts({"host.com": None, "od.com": None},
                                                                  {"host.com": 2026112301, "od.com": 2026112301}),
                            notes)
    assert plan == [] and notes[0].startswith("the primary 10.4.7.11 does not answer for every zone")


RESOLVERS = ["10.4.7.11", "10.4.7.12"]


def resolver_plan(managers: dict, files: dict | None = None) -> list:
    """The plan for a host whose resolver managers run as given and has these files (none by default)."""
    return decide_resolver(SECONDARY, RESOLVERS, Facts(services=Services(managers), files=files or {}))


def test_a_plain_host_gets_resolv_conf_only():
    plan = resolver_plan({})
    assert [c.summary for c in plan] == ["create /etc/resolv.conf"]
    lines = plan[0].want.content.decode().splitlines()
    assert {"search host.com", "nameserver 10.4.7.11", "nameserver 10.4.7.12"} <= set(lines)


def test_systemd_resolved_gets_its_drop_in_and_a_restart():
    plan = resolver_plan({"systemd-resolved": ServiceInfo(True, "active", "enabled")})
    assert [c.summary for c in plan] == [f"create {RESOLVED_DROPIN}", "restart systemd-resolved"]


def test_networkmanager_is_told_to_leave_resolv_conf_alone_first():
    plan = resolver_plan({"NetworkManager": ServiceInfo(True, "active", "enabled")})
    assert [c.summary for c in plan] == [f"create {NM_DROPIN}", "reload NetworkManager", "create /etc/resolv.conf"]


def test_a_resolver_already_as_wanted_gets_no_change():
    wanted = resolver_plan({})[0].want
    assert resolver_plan({}, {wanted.path: on_host(wanted.content)}) == []


def test_the_primarys_serial_takes_its_date_from_the_plans_time_not_the_clock():
    """A dry run approved on 2 December and applied after midnight must compute the same serial, or the plan
    would never match: with --approved-plan, RunContext.plan_time is the dry run's start."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from groundwork.remote import Masker
    from groundwork.context import RunContext
    from groundwork.tasks.dns import PRIMARY as STAGE

    facts = primary_facts({}, {"host.com": None, "od.com": None})
    remote = SimpleNamespace(gather=lambda probes: facts, masker=Masker(), log=[])
    ctx = RunContext(inventory=INVENTORY, dry_run=True, masker=Masker(),
                     plan_time=datetime(2026, 12, 2, 23, 59, tzinfo=timezone.utc)).for_step(PRIMARY.name, "dns_primary")
    report = STAGE.execute(remote, PRIMARY, ctx)
    assert "host.com (serial 2026120201)" in report.notes[0], report.notes
