"""The docker stage's daemon.json and decisions as data."""

import json
import tempfile
from pathlib import Path

from groundwork.changes import FileChange, DesiredFile
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.platforms import PLATFORMS
from tasks.docker import DAEMON_JSON, daemon_config, decide, render_daemon_json
from tests.conftest import copy_seed_inventory

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
HOST = INVENTORY.hosts["hdss7-21"]


def facts(installed=True, active=True) -> Facts:
    return Facts(packages={"docker.io": "20.10" if installed else None, "docker-ce": None},
                 services=Services({"docker": ServiceInfo(installed, "active" if active else "inactive", "enabled")}),
                 paths={"/data/docker", "/etc/docker"})


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
    assert decide(HOST, facts(), [], PLATFORMS["debian"]) == []


def test_changed_file_restarts_with_undo():
    change = FileChange(DesiredFile(DAEMON_JSON, render_daemon_json(HOST)), b"{}\n", None)
    plan = decide(HOST, facts(), [change], PLATFORMS["debian"])
    assert [c.summary for c in plan] == [f"update {DAEMON_JSON}", "restart docker and wait until it answers"]
    assert plan[-1].undo_files_on_failure and plan[-1].recover


def test_fresh_host_installs_debian_docker_io():
    plan = decide(HOST, facts(installed=False, active=False), [], PLATFORMS["debian"])
    assert plan[0].summary == "install docker.io" and plan[-1].summary.startswith("restart docker")
