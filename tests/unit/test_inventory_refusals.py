"""Inventories an operator gets wrong, or an attacker writes: each refused before any host is contacted, with
the file, host and field named (exit 3 through the CLI: test_cli_refuses_bad_inventory.py)."""

import pytest
import yaml

from groundwork.inventory import InventoryError, load_inventory
from tests.conftest import copy_seed_inventory


@pytest.fixture
def inv(tmp_path):
    return copy_seed_inventory(tmp_path)


def change(folder, file, edit):
    path = folder / file
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def problems(folder) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(folder)
    return [str(p) for p in caught.value.problems]


def data(**values):
    return lambda d: d["data"].update(values)


def docker(**values):
    return lambda d: d["data"].setdefault("docker", {}).update(values)


def ca(**values):
    return lambda d: d["data"].setdefault("ca", {}).update(values)


def extras_of(d, level=None):
    entry = d if level is None else d.setdefault(level, {})
    return entry.setdefault("connection_options", {}).setdefault("netmiko", {}).setdefault("extras", {})


# -- item 3: values that would be read as shell, or as a second line of a file -------------------------

@pytest.mark.parametrize("edit, field", [
    (docker(data_root="/x; touch PWNED"), "data.docker.data_root"),
    (docker(data_root="/data/dock er"), "data.docker.data_root"),
    (docker(data_root="/data/$(id)"), "data.docker.data_root"),
    (ca(dir="/opt/certs\n/etc"), "data.ca.dir"),
    (lambda d: d["data"].setdefault("host_prep", {}).update(sysctl_file="/etc/sysctl.d/a`id`.conf"),
     "data.host_prep.sysctl_file"),
    (lambda d: d["data"].setdefault("host_prep", {}).update(sysctl={"net.ipv4.ip_forward": "1\nkernel.modules_disabled=1"}),
     "data.host_prep.sysctl.net.ipv4.ip_forward"),
    (lambda d: d["data"]["host_prep"]["package_repo"].update(url="file:/srv/repo ./\ndeb http://evil/ x"),
     "data.host_prep.package_repo.url"),
    (docker(storage_driver="overlay2; reboot"), "data.docker.storage_driver"),
    (docker(insecure_registries=["harbor.od.com", "x y"]), "data.docker.insecure_registries.1"),
    (docker(registry_mirrors=["http://mirror'$(id)"]), "data.docker.registry_mirrors.0"),
    (data(role="proxy\nsecond line"), "data.role"),
])
def test_a_value_with_shell_characters_or_a_newline_is_refused(inv, edit, field):
    change(inv, "defaults.yaml", edit)
    found = problems(inv)
    assert any(f"defaults.yaml: {field}: " in p for p in found), found


@pytest.mark.parametrize("port", ["22; id", 0, 70000, "22", True])
def test_a_port_must_be_a_port_number(inv, port):
    change(inv, "hosts.yaml", lambda d: d["hdss7-21"].update(port=port))
    assert any("hosts.yaml: hdss7-21: port: must be a TCP port number from 1 to 65535" in p for p in problems(inv))


# -- item 6: inventories accepted or crashing before -----------------------------------------------------

def test_a_group_list_item_that_is_a_mapping_is_a_problem_not_a_crash(inv):
    change(inv, "hosts.yaml", lambda d: d["hdss7-21"].update(groups=[{"master_compute": None}]))
    assert any("hosts.yaml: hdss7-21: groups: must be a list of group names" in p for p in problems(inv))


@pytest.mark.parametrize("edit, wanted", [
    (ca(cn=""), "data.ca.cn: '' is not a valid name (not empty, one line)"),
    (ca(names={"C": "China"}), "data.ca.names.C: 'China' is not a valid country code"),
    (ca(names={"C": "cn"}), "data.ca.names.C: 'cn' is not a valid country code"),
    (ca(key_size=1024), "data.ca: key_size 1024 does not fit key_algo rsa: use 2048 or 3072 or 4096 "
                        "(RSA keys under 2048 bits are refused)"),
    (ca(key_size=256), "data.ca: key_size 256 does not fit key_algo rsa"),
    (ca(key_algo="ecdsa", key_size=2048), "data.ca: key_size 2048 does not fit key_algo ecdsa: use 256"),
    (ca(names={"OU": "ops\nevil"}), "data.ca.names.OU: "),
])
def test_ca_settings_a_ca_cannot_be_made_with_are_refused(inv, edit, wanted):
    change(inv, "defaults.yaml", edit)
    found = problems(inv)
    assert any(wanted in p for p in found), found


def test_host_names_that_differ_only_by_case_are_refused(inv):
    change(inv, "hosts.yaml", lambda d: d.update({"HDSS7-21": {**d["hdss7-21"], "hostname": "10.4.7.23"}}))
    # The file's order decides which one is named second: yaml.safe_dump sorts HDSS7-21 first.
    assert any("hosts.yaml: hdss7-21: differs from host HDSS7-21 only by case" in p for p in problems(inv))


@pytest.mark.parametrize("name, what", [("dns", "of the DNS server"), ("harbor", "of the registry"),
                                        ("Harbor", "of the registry")])
def test_a_host_named_like_a_zone_record_is_refused(inv, name, what):
    change(inv, "hosts.yaml", lambda d: d.update({name: {"hostname": "10.4.7.30", "groups": ["master_compute"]}}))
    assert any(f"hosts.yaml: {name}: a host may not be named {name!r}: that name is the zone record {what}" in p
               for p in problems(inv))


def test_a_host_named_like_an_extra_record_is_refused(inv):
    change(inv, "defaults.yaml", data(dns={"records": {"gitlab": "10.4.7.40"}}))
    change(inv, "hosts.yaml", lambda d: d.update({"gitlab": {"hostname": "10.4.7.30", "groups": ["master_compute"]}}))
    assert any("hosts.yaml: gitlab: a host may not be named 'gitlab'" in p for p in problems(inv))


@pytest.mark.parametrize("record", ["harbor", "dns", "HARBOR"])
def test_a_record_that_would_replace_the_registrys_or_the_dns_servers_address_is_refused(inv, record):
    change(inv, "defaults.yaml", data(dns={"records": {record: "10.4.7.99"}}))
    assert any(f"defaults.yaml: data.dns.records.{record}: {record}.od.com is defined by groundwork itself" in p
               for p in problems(inv))


def test_the_service_domain_must_differ_from_the_host_domain(inv):
    change(inv, "defaults.yaml", data(service_domain="host.com", registry={"name": "harbor.host.com"},
                                      docker={"insecure_registries": ["harbor.host.com"]}))
    assert any("defaults.yaml: data.service_domain: must differ from host_domain (host.com)" in p
               for p in problems(inv))


def test_a_non_ascii_host_name_is_refused(inv):
    change(inv, "hosts.yaml", lambda d: d.update({"hdss7-２３": {"hostname": "10.4.7.23", "groups": ["master_compute"]}}))
    assert any("hdss7-２３: host name must be a DNS label of ASCII letters" in p for p in problems(inv))


# -- item 5: secrets only from the secret source --------------------------------------------------------

@pytest.mark.parametrize("file, edit, where", [
    ("defaults.yaml", lambda d: d["connection_options"]["netmiko"].update(password="hunter2"),
     "connection_options.netmiko.password"),
    ("defaults.yaml", lambda d: extras_of(d).update(passphrase="hunter2"), "connection_options.netmiko.extras.passphrase"),
    ("groups.yaml", lambda d: extras_of(d, "proxy").update(secret="hunter2"),
     "proxy: connection_options.netmiko.extras.secret"),
    ("hosts.yaml", lambda d: d["hdss7-21"].update(password="hunter2"), "hdss7-21: password"),
])
def test_a_password_anywhere_in_the_inventory_is_refused_and_not_repeated(inv, file, edit, where):
    change(inv, file, edit)
    found = problems(inv)
    assert any(f"{file}: {where}: secrets do not belong in the inventory" in p for p in found), found
    assert not any("hunter2" in p for p in found)


# -- item 2: host keys checked whatever the extras say --------------------------------------------------

def test_a_group_that_sets_extras_keeps_the_defaults_known_hosts_and_key(inv, tmp_path):
    change(inv, "groups.yaml", lambda d: extras_of(d, "master_compute").update(conn_timeout=30))
    extras = load_inventory(inv).hosts["hdss7-21"].ssh_extras
    assert extras["conn_timeout"] == 30
    assert extras["alt_key_file"] == str(tmp_path / "known_hosts") and extras["key_file"] == str(tmp_path / "key")
    assert (extras["ssh_strict"], extras["alt_host_keys"], extras["system_host_keys"]) == (True, True, False)


def test_host_key_checking_left_out_is_still_on(inv):
    change(inv, "defaults.yaml", lambda d: [extras_of(d).pop(k) for k in ("ssh_strict", "alt_host_keys")])
    assert load_inventory(inv).hosts["hdss7-11"].ssh_extras["ssh_strict"] is True


@pytest.mark.parametrize("key, value", [("ssh_strict", False), ("system_host_keys", True), ("alt_host_keys", False)])
def test_turning_host_key_checking_off_is_refused_for_that_host(inv, key, value):
    change(inv, "groups.yaml", lambda d: extras_of(d, "master_compute").update({key: value}))
    found = problems(inv)
    assert [p.split(": ", 1)[1] for p in found] == [
        f"{h}: connection_options.netmiko.extras.{key}: must be {str(not value).lower()} or left out: "
        "groundwork checks every host key against the known_hosts file alt_key_file" for h in ("hdss7-21", "hdss7-22")]


def test_no_known_hosts_file_is_refused(inv):
    change(inv, "defaults.yaml", lambda d: extras_of(d).pop("alt_key_file"))
    found = problems(inv)
    assert len(found) == 5 and all("connection_options.netmiko.extras.alt_key_file: missing: the known_hosts "
                                   "file holding this host's key" in p for p in found)


# -- issue 14: one source for platform-wide settings ----------------------------------------------------

@pytest.mark.parametrize("key, value", [("network", "10.4.0.0/16"), ("host_domain", "hosts.example"),
                                        ("service_domain", "svc.example"), ("dns", {"ttl": 300}),
                                        ("registry", {"name": "harbor.od.com", "http_port": 181})])
@pytest.mark.parametrize("file, where", [("groups.yaml", "ops"), ("hosts.yaml", "hdss7-200")])
def test_a_platform_wide_setting_outside_defaults_is_refused(inv, key, value, file, where):
    change(inv, file, lambda d: d[where].setdefault("data", {}).update({key: value}))
    found = problems(inv)
    assert any(f"{file}: {where}: data.{key}: platform-wide: set it in defaults.yaml only (" in p for p in found), found


def test_settings_meant_per_host_stay_per_host(inv):
    change(inv, "hosts.yaml", lambda d: d["hdss7-21"].update(data={
        "docker": {"bip": "172.7.121.1/24", "extra_options": {"debug": True}, "packages": {"debian": ["docker.io"]}},
        "host_prep": {"base_packages": {"debian": ["wget"]}}}))
    host = load_inventory(inv).hosts["hdss7-21"]
    assert str(host.docker_bip) == "172.7.121.1/24" and host.settings.docker.extra_options == {"debug": True}


@pytest.mark.parametrize("network, service_cidr, overlaps", [
    ("192.168.133.0/24", None, "the network 192.168.133.0/24"),        # seed 002's plan and the tutorial's range
    ("10.4.7.0/24", "172.7.0.0/16", "the pod range 172.7.0.0/16"),
])
def test_a_service_range_over_the_hosts_or_the_pods_is_refused(inv, network, service_cidr, overlaps):
    def edit(d):
        d["data"]["network"] = network
        if service_cidr:
            d["data"]["kubernetes"].update(service_cidr=service_cidr, cluster_dns=service_cidr.replace("0/16", "2"))
    change(inv, "defaults.yaml", edit)
    if network != "10.4.7.0/24":
        hosts = yaml.safe_load((inv / "hosts.yaml").read_text())
        for name, host in hosts.items():
            host["hostname"] = host["hostname"].replace("10.4.7.", "192.168.133.")
        (inv / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    found = [p for p in problems(inv) if "data.kubernetes.service_cidr" in p]
    assert len(found) == 1 and f"overlaps {overlaps}" in found[0] and "defaults.yaml: data.kubernetes.service_cidr" in found[0], found


@pytest.mark.parametrize("file, edit, where", [
    ("defaults.yaml", lambda d: d["data"]["docker"].update(registry_mirrors=["http://mirror-user:hunter2@10.4.7.9/"]),
     "data.docker.registry_mirrors"),
    ("groups.yaml", lambda d: d["proxy"].setdefault("data", {}).update(
        host_prep={"package_repo": {"name": "local", "url": "https://u:hunter2@repo.example/debian"}}),
     "proxy: data.host_prep.package_repo.url"),
])
def test_a_url_carrying_a_password_is_refused_and_not_repeated(inv, file, edit, where):
    change(inv, file, edit)
    found = problems(inv)
    assert any(f"{file}: {where}: a URL carrying a password" in p for p in found), found
    assert not any("hunter2" in p for p in found)
