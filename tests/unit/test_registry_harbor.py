"""The registry stage's `harbor` backend, run for real through the local transport against a stand-in installer.

Real Harbor cannot run without internet (its images), so the installer here is made by the test: a tarball
with the layout of Harbor's offline installer whose install.sh starts tests/fakes/harbor_api.py, which answers
the REST endpoints groundwork calls. Everything groundwork does around it runs for real on this machine: tar,
the link, harbor.yml made from the template, install.sh, the wait for health, the API calls through curl.
"""

import json
import os
import signal
import socket
import stat
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from groundwork import harbor
from groundwork.changes import PlanFailed, StageError, apply_plan
from groundwork.context import RunContext
from groundwork.inventory import InventoryError, load_inventory
from groundwork.remote import Masker
from groundwork.settings import Harbor
from groundwork.tasks import registry
from tests.conftest import copy_seed_inventory

FAKES = Path(__file__).resolve().parents[1] / "fakes"
PASSWORD = "s3cret-\"quoted\"\\pass"  # characters curl's config quoting must survive
VERSION = "v2.10.3"

# Shaped like Harbor's harbor.yml.tmpl (keys groundwork sets, and some it must leave alone).
TEMPLATE = """\
hostname: reg.example.invalid
http:
  port: 80
https:
  port: 443
  certificate: /cert/path
  private_key: /key/path
harbor_admin_password: DefaultAdmin1
database:
  password: default-db
  max_idle_conns: 100
data_volume: /data
jobservice:
  max_job_workers: 10
log:
  level: info
  local:
    rotate_count: 50
    location: /var/log/harbor
_version: 2.10.0
"""

INSTALL_SH = """#!/bin/sh
# Stand-in for Harbor's install.sh: refuses a harbor.yml without the seeds' hostname, then serves the API.
set -e
cd "$(dirname "$0")"
grep -q '^hostname: harbor.od.com$' harbor.yml
if [ -f fail-next-install ]; then rm fail-next-install; echo 'prepare: refused by the test' >&2; exit 1; fi
if [ -f api.pid ]; then kill "$(cat api.pid)" 2>/dev/null || true; sleep 0.3; fi
echo installed >> installs.log
nohup {python} harbor_api.py "$PWD/harbor.yml" </dev/null >api.out 2>&1 &
echo $! > api.pid
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_installer(folder: Path) -> Path:
    staging = folder / "staging" / "harbor"
    staging.mkdir(parents=True)
    (staging / "harbor.yml.tmpl").write_text(TEMPLATE)
    (staging / "install.sh").write_text(INSTALL_SH.format(python=sys.executable))
    (staging / "install.sh").chmod(0o755)
    (staging / "harbor_api.py").write_text((FAKES / "harbor_api.py").read_text())
    installer = folder / "src" / f"harbor-offline-installer-{VERSION}.tgz"
    installer.parent.mkdir()
    with tarfile.open(installer, "w:gz") as tar:
        tar.add(staging, arcname="harbor")
    return installer


@pytest.fixture
def ops(tmp_path):
    """The ops host set to the harbor backend, everything under tmp_path, Harbor's port a free one."""
    installer = make_installer(tmp_path)
    inventory = load_inventory(copy_seed_inventory(tmp_path))
    host = inventory.ops_host
    reg = host.settings.registry.model_copy(update={
        "backend": "harbor", "http_port": free_port(), "data_dir": str(tmp_path / "data" / "harbor"),
        "harbor": Harbor(installer=str(installer), install_root=str(tmp_path / "opt"))})
    host = host.__class__(**{**host.__dict__, "settings": host.settings.model_copy(update={"registry": reg})})
    yield host, reg, tmp_path
    for pid_file in (tmp_path / "opt").glob("harbor-*/api.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def converge(remote, host, reg, dry_run=False, password=PASSWORD):
    ctx = RunContext(inventory=None, dry_run=dry_run, masker=remote.masker, secrets={"registry_password": password})
    facts = remote.gather(registry.harbor_probes(reg, password))
    ctx.masker.add(registry.harbor_db_password(host, facts, password))
    plan = registry.harbor_plan(host, reg, facts, password)
    return apply_plan(remote, plan, ctx).mask(remote.masker)


@pytest.fixture
def remote(local_remote):
    local_remote.masker = Masker([PASSWORD])
    return local_remote


def test_harbor_yml_sets_the_seeds_settings_and_keeps_the_installers_other_keys():
    made = yaml.safe_load(harbor.harbor_yml(TEMPLATE.encode(), hostname="harbor.od.com", http_port=180,
                                            data_volume="/data/harbor", admin_password="A", db_password="D"))
    assert made["hostname"] == "harbor.od.com" and made["http"] == {"port": 180} and "https" not in made
    assert made["data_volume"] == "/data/harbor" and made["log"]["local"]["location"] == "/data/harbor/logs"
    assert made["harbor_admin_password"] == "A" and made["database"]["password"] == "D"
    assert made["database"]["max_idle_conns"] == 100 and made["jobservice"] == {"max_job_workers": 10}
    assert made["_version"] == "2.10.0" and made["log"]["local"]["rotate_count"] == 50


def test_a_template_that_is_not_harbors_is_refused():
    with pytest.raises(harbor.HarborError, match="does not look like Harbor's"):
        harbor.harbor_yml(b"a: 1\n", hostname="h", http_port=1, data_volume="/d", admin_password="a",
                          db_password="d")


def test_installer_version_comes_from_the_file_name():
    assert harbor.installer_version("/opt/src/harbor-offline-installer-v2.10.3.tgz") == "v2.10.3"
    assert harbor.installer_version("/x/harbor-offline-installer-1.8.3.tgz") == "v1.8.3"
    with pytest.raises(harbor.HarborError, match="not a Harbor offline installer name"):
        harbor.installer_version("/x/harbor.tgz")


def test_database_password_is_kept_else_derived_from_the_secret_per_host():
    assert harbor.db_password_of(b"database:\n  password: kept\n") == "kept"
    assert harbor.db_password_of(None) is None
    first = registry.database_password("secret", "hdss7-200")
    assert first == registry.database_password("secret", "hdss7-200") != registry.database_password("secret", "x")
    assert "secret" not in first and len(first) == 32


def test_first_run_installs_harbor_and_creates_public_second_run_changes_nothing(remote, ops):
    host, reg, tmp = ops
    home, link = tmp / "opt" / f"harbor-{VERSION}", tmp / "opt" / "harbor"
    first = converge(remote, host, reg)
    assert [c.summary for c in first.changes] == [
        f"unpack {reg.harbor.installer} to {home}", f"link {link} to {home}", f"create {reg.data_dir}",
        f"create {reg.data_dir}/logs", f"create {home}/harbor.yml from the installer's harbor.yml.tmpl",
        "run Harbor's install.sh and wait until Harbor is healthy",
        "create Harbor project 'public' (public) through the REST API"]
    assert os.readlink(link) == str(home)
    made = yaml.safe_load((home / "harbor.yml").read_text())
    assert made["hostname"] == "harbor.od.com" and made["http"]["port"] == reg.http_port
    assert made["harbor_admin_password"] == PASSWORD and made["data_volume"] == reg.data_dir
    assert stat.S_IMODE((home / "harbor.yml").stat().st_mode) == 0o600
    posts = [line for line in (home / "requests.log").read_text().splitlines() if line.startswith("POST")]
    assert len(posts) == 1 and json.loads(posts[0].split(" ", 2)[2]) == {"project_name": "public",
                                                                         "metadata": {"public": "true"}}
    # Neither password is on a command line as the shell got it (the log masks, so it cannot tell), in the
    # log of what ran, or in the report.
    # (Plain text: JSON would escape the password's quotes and backslash, and never match it.)
    shown = "\n".join([*(c.command + c.stdout + c.stderr for c in remote.log),
                       *(c.summary + c.diff for c in first.changes), *remote.executed])
    assert remote.executed and PASSWORD not in shown and made["database"]["password"] not in shown

    second = converge(remote, host, reg)
    assert second.changes == []
    assert (home / "installs.log").read_text().count("installed") == 1
    assert sum(line.startswith("POST") for line in (home / "requests.log").read_text().splitlines()) == 1


def test_a_hand_edited_harbor_yml_is_put_back_and_harbor_reinstalled_without_a_second_project(remote, ops):
    host, reg, tmp = ops
    converge(remote, host, reg)
    home = tmp / "opt" / f"harbor-{VERSION}"
    yml = home / "harbor.yml"
    db_password = yaml.safe_load(yml.read_text())["database"]["password"]
    yml.write_text(yml.read_text().replace("hostname: harbor.od.com", "hostname: harbor.od.com\n# edited"))
    again = converge(remote, host, reg)
    assert [c.summary for c in again.changes] == [f"update {yml}",
                                                  "run Harbor's install.sh and wait until Harbor is healthy"]
    assert "sensitive content not shown" in again.changes[0].diff and db_password not in again.changes[0].diff
    assert yaml.safe_load(yml.read_text())["database"]["password"] == db_password  # Harbor's database keeps it
    assert (home / "installs.log").read_text().count("installed") == 2
    assert converge(remote, host, reg).changes == []


def test_a_dry_run_changes_nothing_and_shows_the_same_plan_twice(remote, ops):
    host, reg, tmp = ops
    first, second = converge(remote, host, reg, dry_run=True), converge(remote, host, reg, dry_run=True)
    assert [(c.summary, c.diff) for c in first.changes] == [(c.summary, c.diff) for c in second.changes]
    assert len(first.changes) == 7 and not (tmp / "opt").exists() and not (tmp / "data").exists()


def test_a_missing_installer_stops_with_the_copy_command(remote, ops):
    host, reg, _ = ops
    Path(reg.harbor.installer).unlink()
    with pytest.raises(StageError, match=r"not on hdss7-200: copy it there first \(scp harbor-offline-installer"):
        converge(remote, host, reg)


def test_a_folder_where_the_link_belongs_stops_the_stage(remote, ops):
    host, reg, tmp = ops
    (tmp / "opt" / "harbor").mkdir(parents=True)
    with pytest.raises(StageError, match="is a directory or file, not a link"):
        converge(remote, host, reg)


def test_a_changed_admin_secret_stops_before_reinstalling_and_says_what_to_do(remote, ops):
    host, reg, tmp = ops
    converge(remote, host, reg)
    with pytest.raises(harbor.HarborError, match="keeps the admin password it was first installed with"):
        converge(remote, host, reg, password="a-new-password")
    home = tmp / "opt" / f"harbor-{VERSION}"
    assert (home / "installs.log").read_text().count("installed") == 1
    assert yaml.safe_load((home / "harbor.yml").read_text())["harbor_admin_password"] == PASSWORD


def test_an_api_that_does_not_answer_is_named(remote):
    with pytest.raises(harbor.HarborError, match=r"API on 127.0.0.1:\d+ does not answer"):
        harbor.project_exists(remote, free_port(), PASSWORD, "public")


def test_backend_harbor_without_an_installer_is_refused_naming_the_field(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["data"]["registry"] = {"backend": "harbor"}
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    with pytest.raises(InventoryError) as refused:
        load_inventory(folder)
    assert "data.registry" in refused.value.report() and "needs harbor.installer" in refused.value.report()


def test_a_failing_install_puts_the_previous_harbor_yml_back_and_brings_harbor_back_on_it(remote, ops):
    host, reg, tmp = ops
    converge(remote, host, reg)
    home = tmp / "opt" / f"harbor-{VERSION}"
    yml = home / "harbor.yml"
    previous = yml.read_text().replace("hostname: harbor.od.com", "hostname: harbor.od.com\n# kept by hand")
    yml.write_text(previous)
    (home / "fail-next-install").touch()
    with pytest.raises(PlanFailed) as failed:
        converge(remote, host, reg)
    assert "prepare: refused by the test" in str(failed.value)
    assert f"previous files restored ({yml})" in str(failed.value)
    assert yml.read_text() == previous
    assert (home / "installs.log").read_text().count("installed") == 2  # first install, then the recovery
    assert harbor.project_exists(remote, reg.http_port, PASSWORD, "public")

