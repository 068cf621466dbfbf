"""The registry stage's decisions as data (distribution backend, and Harbor's answers as facts)."""

import tempfile
from pathlib import Path

import pytest

from groundwork import harbor
from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.settings import Harbor
from groundwork.tasks import registry
from groundwork.tasks.registry import _harbor_yml_changes, decide, desired_files, harbor_home
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
OPS = INVENTORY.ops_host
REG = OPS.settings.registry
LAYOUT = registry.REGISTRY["debian"]
RUNNING = ServiceInfo(True, "active", "enabled")


def facts(installed=True, files_as_wanted=True, password_ok: bool | None = True, running=True) -> Facts:
    files = {w.path: on_host(w.content) for w in desired_files(REG, LAYOUT)} if files_as_wanted else {}
    state = RUNNING if running else ServiceInfo(installed, "inactive", "disabled")
    packages = {p: ("1" if installed else None) for p in (*LAYOUT.packages, *LAYOUT.front_packages)}
    return Facts(os=DEBIAN, packages=packages,
                 services=Services({"nginx": state, LAYOUT.service: state}), files=files,
                 paths={f"{REG.data_dir}/registry"} if installed else set(),
                 password_checks={LAYOUT.htpasswd: password_ok})


def summaries(plan) -> list[str]:
    return [c.summary for c in plan]


def test_a_converged_registry_gets_no_change():
    assert decide(OPS, facts(), "pw") == []


def test_a_password_no_longer_verified_replaces_htpasswd_and_restarts_the_registry_only():
    assert summaries(decide(OPS, facts(password_ok=False), "pw")) == [
        f"replace {LAYOUT.htpasswd}", "restart the registry and wait until it answers"]


def test_a_fresh_host_gets_everything_in_order_registry_before_nginx():
    plan = decide(OPS, facts(installed=False, files_as_wanted=False, password_ok=None, running=False), "pw")
    assert summaries(plan) == [
        "install docker-registry apache2-utils nginx curl", f"create {REG.data_dir}/registry",
        f"create {LAYOUT.config}", f"create /etc/systemd/system/{LAYOUT.service}.service.d/groundwork.conf",
        f"create {LAYOUT.htpasswd}", "restart the registry and wait until it answers",
        f"create /etc/nginx/conf.d/{REG.name}.conf", "check nginx's configuration and reload it"]
    assert "pw" not in "".join(c.diff for c in plan)
    assert plan[-1].commands[0] == "nginx -t -q" and "systemctl restart nginx" in plan[-1].commands[1]


def test_a_changed_vhost_reloads_nginx_and_leaves_the_registry_alone():
    current = facts()
    vhost = desired_files(REG, LAYOUT)[0]
    current["files"][vhost.path] = on_host(b"server { listen 80; }\n")
    plan = decide(OPS, current, "pw")
    assert summaries(plan) == [f"update {vhost.path}", "check nginx's configuration and reload it"]
    assert plan[-1].commands[1] == "systemctl reload nginx"


TEMPLATE = b"hostname: reg.mydomain.com\n_version: 2.10.0\nhttp:\n  port: 80\n"


def harbor_facts(project_status: int | None) -> tuple:
    """The ops host with Harbor installed, healthy, its files as wanted, and this answer to HEAD /projects."""
    reg = REG.model_copy(update={"backend": "harbor",
                                 "harbor": Harbor(installer="/opt/src/harbor-offline-installer-v2.10.3.tgz")})
    host = OPS.__class__(**{**OPS.__dict__, "settings": OPS.settings.model_copy(update={"registry": reg})})
    home, link = harbor_home(reg)
    found = Facts(os=DEBIAN, packages={"docker-compose": "1", "nginx": "1", "curl": "1"},
                  services=Services({"nginx": RUNNING}),
                  files={w.path: on_host(w.content) for w in desired_files(reg, LAYOUT)},
                  paths={f"{home}/install.sh", reg.data_dir, f"{reg.data_dir}/logs"}, links={link: home},
                  harbor_health="healthy", harbor_yml={f"{home}/harbor.yml.tmpl": on_host(TEMPLATE)},
                  harbor_project=project_status)
    wanted = _harbor_yml_changes(host, reg, found, True, "pw")[0].want
    found["harbor_yml"][wanted.path] = on_host(wanted.content, mode="600")
    return host, found


def test_harbor_refusing_the_admin_password_stops_the_plan_saying_what_to_do():
    host, found = harbor_facts(401)
    with pytest.raises(harbor.HarborError, match="keeps the admin password it was first installed with"):
        decide(host, found, "pw")


def test_harbor_healthy_with_its_project_is_no_change_and_without_it_the_project_is_created():
    host, found = harbor_facts(200)
    assert decide(host, found, "pw") == []
    found["harbor_project"] = 404
    assert summaries(decide(host, found, "pw")) == ["create Harbor project 'public' (public) through the REST API"]
