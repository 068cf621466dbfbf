"""One package transaction per host: host preparation installs, with the base tools, what the run's later stages
install on that host; the stages still read their own packages; a dry run plans each package once."""

import tempfile
from pathlib import Path

from groundwork.context import RunContext
from groundwork.facts import Facts, os_info, packages
from groundwork.inventory import load_inventory
from groundwork.platforms import install_missing, platform_for
from groundwork.remote import Masker
from groundwork.stages import Stage, packages_ahead, planned_installs
from groundwork.tasks import docker, host_prep
from groundwork.tasks.pipeline import PIPELINE
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN
from tests.unit.test_docker_decide import facts as docker_facts
from tests.unit.test_host_prep_decide import facts as prep_facts

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
NOT_A_PACKAGE = "gw-no-such-package"


def installs_of(plan) -> list[list[str]]:
    return [c.summary.split()[1:] for c in plan if c.summary.startswith("install ")]


def test_a_fresh_master_gets_every_package_of_the_run_in_one_transaction():
    host = INVENTORY.hosts["hdss7-21"]
    ahead = packages_ahead(PIPELINE, host, INVENTORY)
    fresh = prep_facts(installed=False)
    fresh["packages"] = {p: None for p in host_prep.wanted_packages(host, ahead)["debian"]}
    [installed] = installs_of(host_prep.decide(host, fresh, [], ahead))
    base = host.settings.host_prep.base_packages["debian"]
    assert installed[:len(base)] == base
    for later in ("docker.io", "etcd-server", "etcd-client", "kubernetes-client", *host.settings.kubernetes.node_packages["debian"]):
        assert later in installed
    # chrony must not start before time_sync's drop-in; bind9 is a proxy host's, and needs dnsmasq stopped first.
    assert "chrony" not in installed and "bind9" not in installed


def test_a_proxy_host_gets_nginx_keepalived_and_etcd_but_not_its_dns_server():
    ahead = packages_ahead(PIPELINE, INVENTORY.hosts["hdss7-12"], INVENTORY)["debian"]
    assert {"nginx", "libnginx-mod-stream", "keepalived", "etcd-server"} <= set(ahead)
    assert not {"bind9", "dnsmasq", "chrony", "docker.io"} & set(ahead)


def test_a_run_without_host_preparation_installs_nothing_ahead():
    host = INVENTORY.hosts["hdss7-21"]
    assert packages_ahead([s for s in PIPELINE if s.name != "host_prep"], host, INVENTORY) == {}
    # and host preparation alone, or last, installs only the base tools
    assert packages_ahead([docker.STAGE, host_prep.STAGE], host, INVENTORY) == {}


def test_a_stage_still_installs_its_own_package_when_it_is_missing():
    host = INVENTORY.hosts["hdss7-21"]
    assert ["docker.io"] in installs_of(docker.decide(host, docker_facts(installed=False)))


def test_a_dry_run_plans_each_package_once(local_remote, tmp_path):
    """In a dry run nothing is installed: a stage after host preparation counts what preparation's plan installs
    as installed, so the plan shows one install and an approved plan matches what the real run does."""
    host = INVENTORY.hosts["hdss7-21"]
    stage = Stage(name="needs_a_package", title="t", groups=None, installs=lambda h: {"debian": [NOT_A_PACKAGE]},
                  probes=lambda h, c: [os_info(), packages([NOT_A_PACKAGE])],
                  decide=lambda h, f, c, notes: install_missing(platform_for(f["os"]), [NOT_A_PACKAGE], f["packages"]))

    def planned(ahead):
        ctx = RunContext(inventory=INVENTORY, dry_run=True, masker=Masker(), packages_ahead={host.name: ahead})
        return [c.summary for c in stage.execute(local_remote, host, ctx).changes]

    assert planned({}) == [f"install {NOT_A_PACKAGE}"]
    assert planned({"debian": [NOT_A_PACKAGE], "el": [NOT_A_PACKAGE]}) == []


def test_planned_installs_leaves_installed_packages_and_other_families_alone():
    f = Facts(os=DEBIAN, packages={"a": "1.0", "b": None})
    assert planned_installs(f, {"el": ["b"]}) is f
    out = planned_installs(f, {"debian": ["a", "b"]})
    assert out["packages"]["a"] == "1.0" and out["packages"]["b"] is not None
    assert f["packages"]["b"] is None  # the gather's own facts (perhaps cached) are not changed

