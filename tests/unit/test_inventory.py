"""The inventory model: seed values derived once, every problem reported in one pass."""

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
import yaml

from groundwork.inventory import InventoryError, load_inventory
from tests.conftest import copy_seed_inventory


@pytest.fixture
def inv_dir(tmp_path):
    return copy_seed_inventory(tmp_path)


def edit(folder: Path, file: str, change) -> None:
    path = folder / file
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def problems(folder: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(folder)
    return [str(p) for p in caught.value.problems]


def test_seed_inventory_derives_fqdn_bip_and_zone_records(inv_dir):
    inv = load_inventory(inv_dir)
    assert list(inv.hosts) == ["hdss7-11", "hdss7-12", "hdss7-21", "hdss7-22", "hdss7-200"]
    h21 = inv.hosts["hdss7-21"]
    assert h21.fqdn == "hdss7-21.host.com"
    assert h21.address == IPv4Address("10.4.7.21")
    assert h21.docker_bip == IPv4Interface("172.7.21.1/24")
    assert inv.ops_host.name == "hdss7-200"
    assert [h.name for h in inv.group_members("proxy")] == ["hdss7-11", "hdss7-12"]
    assert inv.host_zone_records()["HDSS7-200"] == IPv4Address("10.4.7.200")
    assert inv.host_zone_records()["dns"] == IPv4Address("10.4.7.11")
    assert inv.service_zone_records() == {"dns": IPv4Address("10.4.7.11"), "harbor": IPv4Address("10.4.7.200")}


def test_seed_defaults_apply_where_inventory_is_silent(inv_dir):
    settings = load_inventory(inv_dir).hosts["hdss7-11"].settings
    assert settings.host_prep.sysctl["net.ipv4.ip_forward"] == "1"
    assert "bind9-dnsutils" in settings.host_prep.base_packages["debian"]
    assert "bind-utils" in settings.host_prep.base_packages["el"]
    # No public registry over plain http unless the inventory asks (the seeds add redhat's and quay.io)
    assert settings.docker.insecure_registries == [] and settings.insecure_registries == ["harbor.od.com"]
    assert settings.ca.expiry == "1752000h"


def test_bip_octet_is_configurable(inv_dir):
    edit(inv_dir, "defaults.yaml", lambda d: d["data"]["docker"].update(bip_octet=9))
    assert load_inventory(inv_dir).hosts["hdss7-22"].docker_bip == IPv4Interface("172.9.22.1/24")


def test_host_data_overrides_group_and_defaults(inv_dir):
    edit(inv_dir, "groups.yaml", lambda d: d["proxy"]["data"].update(host_prep={"min_kernel": "4.0"}))
    edit(inv_dir, "hosts.yaml", lambda d: d["hdss7-12"].update(data={"host_prep": {"min_kernel": "4.19"}}))
    hosts = load_inventory(inv_dir).hosts
    assert (hosts["hdss7-11"].settings.host_prep.min_kernel, hosts["hdss7-12"].settings.host_prep.min_kernel,
            hosts["hdss7-21"].settings.host_prep.min_kernel) == ("4.0", "4.19", "3.10")


def test_three_problems_reported_together_naming_file_host_and_field(inv_dir):
    def break_hosts(d):
        d["hdss7-22"]["hostname"] = "10.4.7.21"       # duplicate IP
        d["hdss7-21"]["groups"] = ["compute"]         # unknown group
        d["hdss7-12"]["hostname"] = "10.4.7.312"      # bad address
    edit(inv_dir, "hosts.yaml", break_hosts)
    found = problems(inv_dir)
    hosts_file = str(inv_dir / "hosts.yaml")
    assert f"{hosts_file}: hdss7-22: hostname: 10.4.7.21 is also the address of hdss7-21" in found
    assert any(p.startswith(f"{hosts_file}: hdss7-21: groups: unknown group 'compute'") for p in found)
    assert f"{hosts_file}: hdss7-12: hostname: '10.4.7.312' is not a valid IPv4 address" in found
    assert len(found) == 3


def test_duplicate_host_name_is_an_error_not_a_silent_override(inv_dir):
    text = (inv_dir / "hosts.yaml").read_text()
    (inv_dir / "hosts.yaml").write_text(text + "hdss7-21:\n  hostname: 10.4.7.23\n  groups: [master_compute]\n")
    assert any("hdss7-21: defined twice" in p for p in problems(inv_dir))


@pytest.mark.parametrize("groups_of_200, groups_of_11, expected", [
    (["master_compute"], ["proxy"], "exactly one host must be in group 'ops', found 0"),
    (["ops"], ["ops"], "exactly one host must be in group 'ops', found 2 (hdss7-11, hdss7-200)"),
])
def test_exactly_one_ops_host(inv_dir, groups_of_200, groups_of_11, expected):
    def change(d):
        d["hdss7-200"]["groups"] = groups_of_200
        d["hdss7-11"]["groups"] = groups_of_11
    edit(inv_dir, "hosts.yaml", change)
    assert any(expected in p for p in problems(inv_dir))


def test_at_least_one_proxy_host(inv_dir):
    def change(d):
        d["hdss7-11"]["groups"] = ["master_compute"]
        d["hdss7-12"]["groups"] = ["master_compute"]
    edit(inv_dir, "hosts.yaml", change)
    assert any("at least one host must be in group 'proxy'" in p for p in problems(inv_dir))


def test_bip_overlapping_the_host_network_is_refused(inv_dir):
    def change(d):
        d["data"]["network"] = "172.7.0.0/16"
    edit(inv_dir, "defaults.yaml", change)
    edit(inv_dir, "hosts.yaml", lambda d: [h.update(hostname=h["hostname"].replace("10.4.7.", "172.7.0."))
                                           for h in d.values()])
    found = problems(inv_dir)
    assert any("hdss7-21: data.docker.bip: docker bip 172.7.21.1/24 overlaps the host network 172.7.0.0/16" in p
               for p in found)


def test_bips_of_two_hosts_must_differ(inv_dir):
    edit(inv_dir, "hosts.yaml", lambda d: d.update({"hdss8-21": {"hostname": "10.4.7.31", "groups": ["master_compute"]}}))
    assert any("hdss8-21: data.docker.bip: docker bip 172.7.21.1/24 is also the bip of hdss7-21" in p
               for p in problems(inv_dir))


def test_bip_follows_the_number_in_the_name_not_the_address(inv_dir):
    """Seed 000's public-cloud plan: hdss7-21 at 172.29.238.165 still gets 172.7.21.1/24."""
    seed_000 = {"hdss7-11": "172.29.238.166", "hdss7-12": "172.29.238.164", "hdss7-21": "172.29.238.165",
                "hdss7-22": "172.29.238.163", "hdss7-200": "172.29.238.162"}
    edit(inv_dir, "defaults.yaml", lambda d: d["data"].update(network="172.29.238.0/24"))
    edit(inv_dir, "hosts.yaml", lambda d: [d[n].update(hostname=a) for n, a in seed_000.items()])
    hosts = load_inventory(inv_dir).hosts
    assert {n: str(h.docker_bip) for n, h in hosts.items()} == {
        "hdss7-11": "None", "hdss7-12": "None", "hdss7-21": "172.7.21.1/24",
        "hdss7-22": "172.7.22.1/24", "hdss7-200": "172.7.200.1/24"}


def test_a_name_without_a_number_needs_an_explicit_bip(inv_dir):
    edit(inv_dir, "hosts.yaml", lambda d: d.update({"gpu-node": {"hostname": "10.4.7.40", "groups": ["master_compute"]}}))
    assert any("hosts.yaml: gpu-node: data.docker.bip: missing: docker0's address comes from the number the host's "
               "name ends with" in p for p in problems(inv_dir))
    edit(inv_dir, "hosts.yaml", lambda d: d["gpu-node"].update(data={"docker": {"bip": "172.7.40.1/24"}}))
    assert str(load_inventory(inv_dir).hosts["gpu-node"].docker_bip) == "172.7.40.1/24"


def test_proxy_hosts_named_without_numbers_need_no_bip(inv_dir):
    """docker never runs on a proxy host: lb-east and lb-west are accepted without data.docker.bip."""
    def rename(d):
        d["lb-east"], d["lb-west"] = d.pop("hdss7-11"), d.pop("hdss7-12")
    edit(inv_dir, "hosts.yaml", rename)
    hosts = load_inventory(inv_dir).hosts
    assert hosts["lb-east"].docker_bip is None and hosts["lb-west"].docker_bip is None
    assert str(hosts["hdss7-21"].docker_bip) == "172.7.21.1/24"


def test_address_outside_the_network(inv_dir):
    edit(inv_dir, "hosts.yaml", lambda d: d["hdss7-22"].update(hostname="10.4.9.22"))
    assert any("hdss7-22: hostname: 10.4.9.22 is outside the network 10.4.7.0/24" in p for p in problems(inv_dir))


def test_unknown_keys_and_wrong_types_name_the_field(inv_dir):
    edit(inv_dir, "defaults.yaml", lambda d: d["data"]["docker"].update(bip_octt=8, live_restore="maybe"))
    edit(inv_dir, "hosts.yaml", lambda d: d["hdss7-11"].update(hostnme="x"))
    found = problems(inv_dir)
    assert any(p.endswith("defaults.yaml: data.docker.bip_octt: unknown key") for p in found)
    assert any("defaults.yaml: data.docker.live_restore: Input should be a valid boolean" in p for p in found)
    assert any(p.endswith("hosts.yaml: hdss7-11: hostnme: unknown key") for p in found)


def test_invalid_record_name_in_dns_settings(inv_dir):
    edit(inv_dir, "defaults.yaml", lambda d: d["data"]["dns"].update(records={"bad_name": "10.4.7.50",
                                                                              "ok": "10.4.7.999"}))
    found = problems(inv_dir)
    assert any("data.dns.records.bad_name: 'bad_name' is not a valid DNS name" in p for p in found)
    assert any("data.dns.records.ok: " in p and "10.4.7.999" in p for p in found)


def test_password_in_inventory_is_refused(inv_dir):
    edit(inv_dir, "defaults.yaml", lambda d: d.update(password="hunter2"))
    found = problems(inv_dir)
    assert any("defaults.yaml: password: secrets do not belong in the inventory" in p for p in found)
    assert not any("hunter2" in p for p in found)


def test_missing_key_file_is_reported_before_any_connection(inv_dir, tmp_path):
    (tmp_path / "key").unlink()
    found = problems(inv_dir)
    assert found == [f"{inv_dir / 'defaults.yaml'}: connection_options.netmiko.extras.key_file: "
                     f"SSH private key {tmp_path / 'key'} does not exist"]


def test_malformed_yaml_names_the_line(inv_dir):
    (inv_dir / "groups.yaml").write_text("proxy:\n  data: [unclosed\n")
    assert any(str(inv_dir / "groups.yaml") in p and "line" in p and "not valid YAML" in p
               for p in problems(inv_dir))


def test_the_lab_reads_the_inventory_before_its_key_exists(inv_dir, tmp_path):
    (tmp_path / "key").unlink()
    assert len(load_inventory(inv_dir, key_files=False).hosts) == 5


def test_an_operators_cfssl_files_set_the_ca(inv_dir, tmp_path):
    from tests.unit.test_pki import SEED_CA_CSR

    cfssl = tmp_path / "cfssl"
    cfssl.mkdir()
    (cfssl / "ca-csr.json").write_text(SEED_CA_CSR)
    (cfssl / "ca-config.json").write_text('{"signing": {"default": {"expiry": "87600h"}, "profiles": {}}}')
    edit(inv_dir, "defaults.yaml", lambda d: d["data"].update(ca={"cfssl_dir": str(cfssl)}))
    ca = load_inventory(inv_dir).ops_host.settings.ca
    assert (ca.cn, ca.names.O, ca.expiry, ca.profile_expiry, ca.dir) == ("ben123123", "od", "1752000h", "87600h",
                                                                         "/opt/certs")
    (cfssl / "ca-csr.json").write_text("{not json")
    assert any("data.ca.cfssl_dir" in p and "not valid JSON" in p for p in problems(inv_dir))


def test_a_registry_name_no_dns_server_here_serves_is_refused(inv_dir):
    edit(inv_dir, "defaults.yaml", lambda d: d["data"].update(registry={"name": "harbor.example.com"}))
    found = problems(inv_dir)
    assert any(p.endswith("defaults.yaml: data.registry.name: harbor.example.com does not resolve: it is not in "
                          "the service domain od.com, the zone the DNS stage serves (the seeds use harbor.od.com)")
               for p in found)
