"""The dnsmasq backend's decisions as data (seed 002's DNS), and each backend stopping the other's server."""

import tempfile
from pathlib import Path

from groundwork.changes import CommandChange
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.platforms import PLATFORMS
from groundwork.tasks import dns, dnsmasq
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN as DEBIAN_OS, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
HOST = INVENTORY.hosts["hdss7-12"]
DEBIAN = PLATFORMS["debian"]
CONF = dnsmasq.DNSMASQ["debian"].conf
RUNNING = ServiceInfo(True, "active", "enabled")
STOPPED = ServiceInfo(True, "inactive", "disabled")


def facts(services: dict, installed: bool, configured: bool = True) -> Facts:
    conf = {CONF: on_host(dnsmasq.render_conf(HOST, INVENTORY))} if configured else {}
    return Facts(os=DEBIAN_OS, files=conf, packages={"dnsmasq": "2.89-1" if installed else None},
                 services=Services(services))


def test_the_configuration_serves_every_name_of_both_zones_on_this_hosts_address():
    text = dnsmasq.render_conf(HOST, INVENTORY).decode()
    assert "listen-address=10.4.7.12\nbind-interfaces\n" in text and "no-resolv" in text
    for line in ("address=/hdss7-21.host.com/10.4.7.21", "address=/hdss7-200.host.com/10.4.7.200",
                 "address=/dns.host.com/10.4.7.11", "address=/harbor.od.com/10.4.7.200", "address=/dns.od.com/10.4.7.11",
                 "local=/host.com/", "local=/od.com/", "local-ttl=60"):
        assert line in text.splitlines()
    assert "server=" not in text  # no forwarders in the lab's inventory


def test_a_bind9_host_gets_named_stopped_first_then_dnsmasq_installed_configured_and_started():
    plan = dnsmasq.decide(HOST, INVENTORY, facts({"named": RUNNING}, installed=False, configured=False))
    assert [c.summary for c in plan] == ["stop and disable named (the dns backend is dnsmasq)", "install dnsmasq",
                                         f"create {CONF}", "restart dnsmasq and wait until it answers"]
    assert plan[0].commands == ["systemctl disable --now named"]
    restart = plan[-1]
    assert isinstance(restart, CommandChange) and restart.undo_files_on_failure
    assert "dig +short +time=1 +tries=1 A dns.host.com @10.4.7.12" in restart.commands[1]


def test_a_converged_dnsmasq_host_gets_no_change():
    assert dnsmasq.decide(HOST, INVENTORY, facts({"named": STOPPED, "dnsmasq": RUNNING}, installed=True)) == []


def test_the_bind9_backend_stops_dnsmasq_before_it_installs_and_starts_named():
    services = {"named": ServiceInfo(False, "inactive", "none"), "dnsmasq": RUNNING}
    serving = {f"soa@{HOST.address}": {"host.com": None, "od.com": None}}
    plan = dns._plan_server(HOST, Facts(**facts(services, True), **serving), DEBIAN,
                            dns._named_conf_files(HOST, INVENTORY, DEBIAN, primary=False), {"host.com": 1, "od.com": 1})
    assert [c.summary for c in plan][:4] == ["stop and disable dnsmasq (the dns backend is bind9)",
                                             "install bind9 bind9-utils bind9-dnsutils",
                                             "create /etc/bind/named.conf.options", "create /etc/bind/named.conf.local"]
    assert plan[-1].summary == "check the configuration and start named"


def test_each_backend_runs_only_its_own_stages():
    bind9 = [s.name for s in dns.STAGES if s.applies_to(HOST, INVENTORY)]
    assert bind9 == ["dns_secondary", "resolver"]
    dns_settings = INVENTORY.defaults.dns.model_copy(update={"backend": "dnsmasq"})
    defaults = INVENTORY.defaults.model_copy(update={"dns": dns_settings})
    with_dnsmasq = INVENTORY.__class__(directory=INVENTORY.directory, hosts=INVENTORY.hosts, defaults=defaults)
    assert [s.name for s in dns.STAGES if s.applies_to(HOST, with_dnsmasq)] == ["dnsmasq", "resolver"]
    assert [s.name for s in dns.STAGES if s.applies_to(INVENTORY.dns_primary, with_dnsmasq)] == ["dnsmasq", "resolver"]
