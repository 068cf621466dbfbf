"""The docker stage's daemon.json and decisions as data."""

import json
import tempfile
from pathlib import Path

from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.tasks.docker import DAEMON_JSON, daemon_config, decide, render_daemon_json
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
HOST = INVENTORY.hosts["hdss7-21"]


def facts(installed=True, active=True, daemon_json=None) -> Facts:
    return Facts(os=DEBIAN, packages={"docker.io": "20.10" if installed else None, "docker-ce": None},
                 services=Services({"docker": ServiceInfo(installed, "active" if active else "inactive", "enabled")}),
                 paths={"/data/docker", "/etc/docker"},
                 files={DAEMON_JSON: daemon_json or on_host(render_daemon_json(HOST))})


def test_daemon_json_is_the_seeds_with_the_host_bip():
    assert list(daemon_config(HOST)) == ["data-root", "storage-driver", "insecure-registries", "registry-mirrors",
                                         "bip", "exec-opts", "live-restore"]
    assert json.loads(render_daemon_json(HOST))["bip"] == "172.7.21.1/24"


def test_extra_options_are_merged_over():
    host = HOST.__class__(**{**HOST.__dict__, "settings": HOST.settings.model_copy(update={
        "docker": HOST.settings.docker.model_copy(update={"extra_options": {"live-restore": False, "debug": True}})})})
    config = daemon_config(host)
    assert config["live-restore"] is False and config["debug"] is True


def test_no_change_no_restart():
    assert decide(HOST, facts()) == []


def test_changed_file_restarts_with_undo():
    plan = decide(HOST, facts(daemon_json=on_host(b"{}\n")))
    assert [c.summary for c in plan] == [f"update {DAEMON_JSON}", "restart docker and wait until it answers"]
    assert plan[0].before == b"{}\n" and '"bip": "172.7.21.1/24"' in plan[0].diff
    assert plan[-1].undo_files_on_failure and plan[-1].recover


def test_only_the_mode_differing_is_set_without_rewriting_the_content():
    plan = decide(HOST, facts(daemon_json=on_host(render_daemon_json(HOST), mode="600")))
    assert [c.summary for c in plan] == [f"set mode 644 owner root:root on {DAEMON_JSON}",
                                         "restart docker and wait until it answers"]


def test_plain_http_to_the_platforms_registry_only_unless_the_inventory_asks():
    assert daemon_config(HOST)["insecure-registries"] == ["harbor.od.com"]
    seeds = ["registry.access.redhat.com", "quay.io", "harbor.od.com"]
    host = HOST.__class__(**{**HOST.__dict__, "settings": HOST.settings.model_copy(update={
        "docker": HOST.settings.docker.model_copy(update={"insecure_registries": seeds})})})
    assert daemon_config(host)["insecure-registries"] == ["harbor.od.com", "registry.access.redhat.com", "quay.io"]


def test_a_restart_under_a_running_kubelet_waits_until_the_node_reports_ready_again():
    """Restarting docker makes a node NotReady for a while: where the kubelet runs, the stage ends only once
    the kubelet reported it Ready since docker came back (the verification read it NotReady otherwise)."""
    bare = decide(HOST, facts(daemon_json=on_host(b"{}\n")))[-1]
    with_kubelet = facts(daemon_json=on_host(b"{}\n"))
    with_kubelet["services"] = Services({"docker": ServiceInfo(True, "active", "enabled"),
                                         "kubelet": ServiceInfo(True, "active", "enabled")})
    waited = decide(HOST, with_kubelet)[-1]
    ready = "ActiveEnterTimestamp --value docker"
    assert not any(ready in c for c in bare.commands)
    assert any(ready in c and "get node hdss7-21.host.com" in c for c in waited.commands)
