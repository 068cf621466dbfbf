"""The L4 proxy and VIP stages' files and decisions as data, and the inventory's rules for lb."""

import tempfile
from pathlib import Path

import pytest
import yaml

from groundwork.changes import FileEdit
from groundwork.facts import Facts, ServiceInfo, Services, interfaces
from groundwork.inventory import InventoryError, load_inventory
from groundwork.tasks.lb import (CHECK_SCRIPT, INCLUDE, KEEPALIVED_CONF, NGINX_CONF, STREAM_CONF, decide_proxy, decide_vip,
                      stream_file, vip_files, with_stream_include)
from groundwork.render import render
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import CENTOS, DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
FIRST, SECOND = INVENTORY.hosts["hdss7-11"], INVENTORY.hosts["hdss7-12"]
PASSWORD = "s3cret.x"
DEBIAN_NGINX_CONF = (b"user www-data;\ninclude /etc/nginx/modules-enabled/*.conf;\nevents {\n}\nhttp {\n"
                     b"\tinclude /etc/nginx/conf.d/*.conf;\n\tinclude /etc/nginx/sites-enabled/*;\n}\n")


def inventory_with(tmp_path, **lb):
    folder = copy_seed_inventory(tmp_path)
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["data"]["lb"] = lb
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    return folder


def refusals(folder) -> list[str]:
    with pytest.raises(InventoryError) as refused:
        load_inventory(folder)
    return [str(p) for p in refused.value.problems]


# -- inventory ------------------------------------------------------------------------------------------

def test_the_tutorials_values_are_the_defaults():
    assert str(INVENTORY.lb_vip) == "10.4.7.10"
    assert [str(b) for b in INVENTORY.lb_backends] == ["10.4.7.21", "10.4.7.22"]
    assert (INVENTORY.vrrp_priority(FIRST), INVENTORY.vrrp_priority(SECOND)) == (100, 90)


def test_a_vip_outside_the_network_or_on_a_host_is_refused_naming_the_field(tmp_path):
    outside = refusals(inventory_with(tmp_path / "a", vip="10.4.8.10"))
    assert any("defaults.yaml: data.lb.vip: 10.4.8.10 is outside the network 10.4.7.0/24" in p for p in outside)
    taken = refusals(inventory_with(tmp_path / "b", vip="10.4.7.21"))
    assert any("data.lb.vip: data.lb.vip 10.4.7.21 is the address of hdss7-21" in p for p in taken)


def test_lb_is_platform_wide(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    groups = yaml.safe_load((folder / "groups.yaml").read_text())
    groups["proxy"]["data"]["lb"] = {"port": 8443}
    (folder / "groups.yaml").write_text(yaml.safe_dump(groups))
    assert any("groups.yaml: proxy: data.lb: platform-wide" in p for p in refusals(folder))


def test_no_backend_at_all_is_refused(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    hosts = yaml.safe_load((folder / "hosts.yaml").read_text())
    for name in ("hdss7-21", "hdss7-22"):
        hosts[name]["groups"] = ["etcd"]
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    assert any("data.lb.backends: empty, and no host is in group master_compute" in p for p in refusals(folder))


def test_backends_from_the_inventory_replace_the_master_compute_hosts(tmp_path):
    inventory = load_inventory(inventory_with(tmp_path, backends=["10.4.7.31"], backend_port=16443, port=8443))
    conf = stream_file(inventory).content.decode()
    assert "server 10.4.7.31:16443 max_fails=3 fail_timeout=30s;" in conf and "listen 8443;" in conf
    assert "10.4.7.21" not in conf


# -- l4proxy --------------------------------------------------------------------------------------------

def proxy_facts(installed=True, running=True, conf=DEBIAN_NGINX_CONF, stream=None, os=DEBIAN) -> Facts:
    return Facts(os=os, packages={p: "1.22" if installed else None for p in ("nginx", "libnginx-mod-stream",
                                                                              "nginx-mod-stream")},
                 services=Services({"nginx": ServiceInfo(installed, "active" if running else "inactive", "enabled")}),
                 files={STREAM_CONF: stream or on_host(stream_file(INVENTORY).content)},
                 nginx_conf={NGINX_CONF: on_host(conf) if conf is not None else None})


def test_the_stream_block_is_the_tutorials():
    conf = stream_file(INVENTORY).content.decode()
    for line in ("server 10.4.7.21:6443 max_fails=3 fail_timeout=30s;", "server 10.4.7.22:6443 max_fails=3 "
                 "fail_timeout=30s;", "listen 7443;", "proxy_connect_timeout 2s;", "proxy_timeout 900s;"):
        assert line in conf


def test_the_include_is_added_once_at_the_top_level_and_http_is_left_alone():
    once = with_stream_include(DEBIAN_NGINX_CONF)
    assert once.startswith(DEBIAN_NGINX_CONF) and once.rstrip().endswith(INCLUDE.encode())
    assert with_stream_include(once) == once
    # a commented-out include is not the include
    assert with_stream_include(b"#" + INCLUDE.encode() + b"\n").count(INCLUDE.encode()) == 2


def test_converged_proxy_host_gets_no_change():
    assert decide_proxy(FIRST, proxy_facts(conf=with_stream_include(DEBIAN_NGINX_CONF)), INVENTORY) == []


def test_nginx_conf_keeps_its_attributes_and_gains_one_line_then_nginx_is_checked_and_reloaded():
    plan = decide_proxy(FIRST, proxy_facts(), INVENTORY)
    assert [c.summary for c in plan] == [f"update {NGINX_CONF}", "check nginx's configuration and reload it"]
    added = [line for line in plan[0].diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(added) == 3 and added[-1] == f"+{INCLUDE}" and not any(line.startswith("-") and not
                                                                     line.startswith("---")
                                                                     for line in plan[0].diff.splitlines())
    assert plan[-1].commands[:2] == ["nginx -t -q", "systemctl reload nginx"] and plan[-1].undo_files_on_failure


def test_a_fresh_host_installs_then_edits_nginx_conf_as_installed_then_starts_nginx():
    plan = decide_proxy(FIRST, proxy_facts(installed=False, running=False, conf=None, stream=None) |
                        {"files": {STREAM_CONF: None}}, INVENTORY)
    assert [c.summary for c in plan] == ["install nginx libnginx-mod-stream", f"create {STREAM_CONF}",
                                         f"include {STREAM_CONF} from {NGINX_CONF}",
                                         "check nginx's configuration and reload it"]
    assert isinstance(plan[2], FileEdit) and "systemctl restart nginx" in plan[-1].commands[1]


def test_el_hosts_get_els_stream_module():
    plan = decide_proxy(FIRST, proxy_facts(installed=False, os=CENTOS), INVENTORY)
    assert plan[0].summary == "install nginx nginx-mod-stream"


# -- vip ------------------------------------------------------------------------------------------------

def keepalived_conf(host) -> bytes:
    return [f for f in vip_files(host, INVENTORY, "eth0", PASSWORD) if f.path == KEEPALIVED_CONF][0].content


def vip_facts(host, installed=True, running=True, conf=None) -> Facts:
    return Facts(os=DEBIAN, packages={"keepalived": "2.2.7" if installed else None}, keepalived_state="BACKUP", vip_answers=True,
                 services=Services({"keepalived": ServiceInfo(installed, "active" if running else "inactive",
                                                              "enabled")}),
                 interfaces=interfaces().parse(f"2: eth0    inet {host.address}/24 brd 10.4.7.255 scope global eth0\n"
                                               "2: eth0    inet 10.4.7.10/32 scope global eth0"),
                 files={CHECK_SCRIPT: on_host(render("lb/check_port.sh"), mode="755")},
                 keepalived_conf={KEEPALIVED_CONF: on_host(conf if conf is not None else keepalived_conf(host),
                                                           mode="600")})


def test_keepalived_conf_is_unicast_nopreempt_backup_with_priorities_from_host_order():
    first, second = keepalived_conf(FIRST).decode(), keepalived_conf(SECOND).decode()
    assert "priority 100" in first and "priority 90" in second
    for conf, own, peer in ((first, "10.4.7.11", "10.4.7.12"), (second, "10.4.7.12", "10.4.7.11")):
        assert "state BACKUP" in conf and "nopreempt" in conf and "virtual_router_id 251" in conf
        assert f"unicast_src_ip {own}" in conf and f"unicast_peer {{\n        {peer}\n    }}" in conf
        assert f"auth_pass {PASSWORD}" in conf and "10.4.7.10/32 dev eth0" in conf
        assert f'script "{CHECK_SCRIPT} 7443"' in conf and "interval 2" in conf


def test_keepalived_conf_is_secret_and_checked_by_keepalived_before_it_takes_effect():
    conf = [f for f in vip_files(FIRST, INVENTORY, "eth0", PASSWORD) if f.path == KEEPALIVED_CONF][0]
    assert conf.sensitive and conf.mode == "600" and conf.validate == "keepalived -t -f {path}"


def test_converged_vip_host_gets_no_change():
    assert decide_vip(FIRST, vip_facts(FIRST), INVENTORY, PASSWORD) == []


def test_a_changed_file_reloads_keepalived_so_the_vip_stays():
    plan = decide_vip(SECOND, vip_facts(SECOND, conf=b"old\n"), INVENTORY, PASSWORD)
    assert [c.summary for c in plan] == [f"update {KEEPALIVED_CONF}",
                                         "reload keepalived (the VIP stays where it is) and check that it answers"]
    assert "content never shown" in plan[0].diff or PASSWORD not in plan[0].diff
    assert plan[-1].commands[0] == "systemctl reload keepalived" and "ping -c 1 -W 1 10.4.7.10" in plan[-1].commands[1]


def test_a_stopped_keepalived_is_started_and_waited_for():
    plan = decide_vip(FIRST, vip_facts(FIRST, running=False), INVENTORY, PASSWORD)
    assert [c.summary for c in plan] == ["start keepalived and wait until the VIP answers"]
    assert "systemctl restart keepalived" in plan[0].commands[0]


def test_a_running_keepalived_with_the_vip_answering_nowhere_is_restarted():
    plan = decide_vip(FIRST, vip_facts(FIRST) | {"vip_answers": False}, INVENTORY, PASSWORD)
    assert [c.summary for c in plan] == ["restart keepalived: the VIP answers on no proxy host"]
    assert "systemctl restart keepalived" in plan[0].commands[0] and "ping -c 1 -W 1 10.4.7.10" in plan[0].commands[1]


def test_a_host_whose_address_is_on_no_interface_is_refused():
    facts = vip_facts(FIRST) | {"interfaces": {}}
    with pytest.raises(Exception, match="no interface of hdss7-11 carries its address 10.4.7.11"):
        decide_vip(FIRST, facts, INVENTORY, PASSWORD)


def test_one_proxy_host_alone_has_no_unicast_peers():
    folder = copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-")))
    hosts = yaml.safe_load((folder / "hosts.yaml").read_text())
    hosts["hdss7-12"]["groups"] = ["etcd"]
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    inventory = load_inventory(folder)
    conf = vip_files(inventory.hosts["hdss7-11"], inventory, "eth0", PASSWORD)[1].content.decode()
    assert "unicast" not in conf  # keepalived refuses unicast without peers, and falls back to multicast


def test_the_vrrp_password_must_fit_vrrp(tmp_path, monkeypatch):
    from groundwork.secrets import load_secrets
    monkeypatch.setenv("GROUNDWORK_VRRP_PASSWORD", "longer than 8")
    with pytest.raises(InventoryError) as refused:
        load_secrets({}, tmp_path / "config.yaml")
    text = str(refused.value.problems[0])
    assert "vrrp_password" in text and "GROUNDWORK_VRRP_PASSWORD" in text and "longer than 8" not in text
