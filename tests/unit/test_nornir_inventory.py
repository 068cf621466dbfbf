"""Nornir's hosts are built from the validated model, read once: the address, the login as Nornir would resolve
it level by level, and netmiko's merged extras with the host key policy pinned."""

import yaml

from groundwork.cli import _nornir
from groundwork.inventory import load_inventory
from tests.conftest import copy_seed_inventory


def edit(folder, name, change):
    path = folder / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_nornir_hosts_carry_the_models_address_login_and_extras(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    edit(folder, "groups.yaml", lambda g: g["master_compute"].update(
        username="deploy", connection_options={"netmiko": {"port": 2200, "extras": {"conn_timeout": 30}}}))
    edit(folder, "hosts.yaml", lambda h: h["hdss7-22"].update(port=2222, username="ops user"))
    inventory = load_inventory(folder)
    nr = _nornir({}, None, inventory)
    nr.inventory.defaults.password = "from the secret source"

    params = {name: nr.inventory.hosts[name].get_connection_parameters("netmiko") for name in inventory.hosts}
    assert {n: (p.hostname, p.username, p.port, p.platform) for n, p in params.items()} == {
        "hdss7-11": ("10.4.7.11", "root", None, "linux"),
        "hdss7-12": ("10.4.7.12", "root", None, "linux"),
        "hdss7-200": ("10.4.7.200", "root", None, "linux"),
        "hdss7-21": ("10.4.7.21", "deploy", 2200, "linux"),  # the group's, netmiko's own port first
        # the host's own username wins over its group's; a netmiko port of any level over a level's own (Nornir)
        "hdss7-22": ("10.4.7.22", "ops user", 2200, "linux"),
    }
    assert {p.password for p in params.values()} == {"from the secret source"}
    # the group set only conn_timeout: the defaults' known_hosts file and host key checking stay
    extras = params["hdss7-21"].extras
    assert extras["conn_timeout"] == 30 and extras["alt_key_file"].endswith("known_hosts")
    assert extras["ssh_strict"] is True and extras["system_host_keys"] is False
    assert params["hdss7-11"].extras["conn_timeout"] == 10
