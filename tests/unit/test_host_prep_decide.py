"""host_prep's decisions as data: facts in, changes out; a host already as wanted gets no change."""

import tempfile
from pathlib import Path

import pytest

from groundwork.changes import CommandChange, StageError
from groundwork.facts import Facts, HostnameInfo, OsInfo, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.platforms import PLATFORMS
from groundwork.tasks.host_prep import desired_files, decide
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import CENTOS, DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
HOST = INVENTORY.hosts["hdss7-21"]


def facts(os=DEBIAN, hostname=HOST.fqdn, installed=True, sysctl=None, selinux=None, firewalld=None,
          bridge_loaded=True, files=None) -> Facts:
    """A host in the given state; its files as wanted unless files says otherwise ({}: none there)."""
    prep = HOST.settings.host_prep
    family = "el" if os is CENTOS else "debian"
    if files is None:
        files = {w.path: on_host(w.content) for w in desired_files(HOST, PLATFORMS[family])}
    return Facts(
        os=os, hostname=HostnameInfo(static=hostname, running=hostname),
        selinux=selinux or {"running": None, "config": None},
        services=Services({"firewalld": firewalld or ServiceInfo(False, "inactive", "none")}),
        packages={p: ("1.0" if installed else None) for p in prep.base_packages[family]},
        sysctl=dict(prep.sysctl) if sysctl is None else sysctl,
        paths={"/proc/sys/net/bridge"} if bridge_loaded else set(),
        commands={"hostnamectl"}, files=files)


def plan_for(f: Facts):
    notes = []
    return decide(HOST, f, notes), notes


def test_host_already_as_wanted_gets_no_change_and_says_why():
    plan, notes = plan_for(facts())
    assert plan == []
    assert f"hostname is already {HOST.fqdn}" in notes
    assert "kernel settings, packages and files already as wanted" in notes


def test_fresh_debian_host():
    f = facts(hostname="localhost", installed=False,
              sysctl={k: "0" for k in HOST.settings.host_prep.sysctl}, files={})
    plan, _ = plan_for(f)
    summaries = [c.summary for c in plan]
    assert summaries[0] == "set hostname hdss7-21.host.com"
    assert plan[0].commands == ["hostnamectl set-hostname hdss7-21.host.com"]
    # The repository comes before the install that needs it, the sysctl file before the values are applied.
    assert summaries.index("create /etc/apt/sources.list.d/groundwork-local.list") < \
        summaries.index("install wget net-tools telnet tree nmap sysstat lrzsz dos2unix bind9-dnsutils")
    install = next(c for c in plan if c.summary.startswith("install"))
    assert install.commands[0] == "apt-get update -qq"
    assert summaries[-1] == "apply kernel settings"
    assert "-0\n+1" in plan[-1].diff and "net.ipv4.ip_forward" in plan[-1].diff


def test_only_running_values_that_differ_are_set():
    running = dict(HOST.settings.host_prep.sysctl, **{"net.ipv4.ip_forward": "0"})
    plan, _ = plan_for(facts(sysctl=running))
    assert [c.commands for c in plan] == [["sysctl -q -w net.ipv4.ip_forward=1"]]


def test_br_netfilter_is_loaded_only_when_absent():
    sysctl = {k: (None if k.startswith("net.bridge") else v) for k, v in HOST.settings.host_prep.sysctl.items()}
    plan, _ = plan_for(facts(bridge_loaded=False, sysctl=sysctl))
    assert [c.summary for c in plan] == ["load br_netfilter", "apply kernel settings"]
    assert plan[0].commands == ["modprobe br_netfilter"]


def test_el_host_gets_selinux_off_and_firewalld_stopped_with_el_package_names():
    f = facts(os=CENTOS, installed=False, selinux={"running": "enforcing", "config": "enforcing"},
              firewalld=ServiceInfo(True, "active", "enabled"))
    plan, _ = plan_for(f)
    by_summary = {c.summary: c for c in plan}
    assert by_summary["disable SELinux"].commands == [
        "setenforce 0", "sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config"]
    assert by_summary["stop and disable firewalld"].commands == ["systemctl disable --now firewalld"]
    install = next(c for c in plan if c.summary.startswith("install"))
    assert install.commands == ["yum makecache -q", "yum install -y -q epel-release wget net-tools telnet tree "
                                                    "nmap sysstat lrzsz dos2unix bind-utils"]


def test_selinux_already_disabled_is_no_change():
    plan, _ = plan_for(facts(os=CENTOS, selinux={"running": "disabled", "config": "disabled"},
                             firewalld=ServiceInfo(True, "inactive", "disabled")))
    assert plan == []


def test_kernel_older_than_docker_needs_fails_before_any_change():
    old = OsInfo("centos", ("rhel",), "6", "CentOS 6", "2.6.32-754.el6.x86_64")
    with pytest.raises(StageError, match=r"kernel 2.6.32-754.el6.x86_64 is older than 3.10"):
        plan_for(facts(os=old, hostname="localhost"))


def test_changed_repository_alone_refreshes_the_index():
    repo = desired_files(HOST, PLATFORMS["debian"])[0]
    current = facts()
    current["files"][repo.path] = on_host(b"deb [trusted=yes] file:/old ./\n")
    plan, _ = plan_for(current)
    assert [c.summary for c in plan] == ["update /etc/apt/sources.list.d/groundwork-local.list",
                                         "refresh the package index"]
    assert isinstance(plan[1], CommandChange) and plan[1].commands == ["apt-get update -qq"]
    assert "-deb [trusted=yes] file:/old ./" in plan[0].diff


@pytest.mark.parametrize("url, trusted, unsigned", [
    ("file:/srv/repo", None, True),                  # on the host itself: nothing on the path to forge it
    ("http://mirror.example/debian", None, False),   # over the network: its signature is checked
    ("https://mirror.example/debian", None, False),
    ("http://mirror.example/debian", True, True),    # the inventory may say so outright
])
def test_only_a_file_repository_is_trusted_unsigned_by_default(url, trusted, unsigned):
    prep = HOST.settings.host_prep
    repo = prep.package_repo.model_copy(update={"url": url, "trusted": trusted})
    settings = HOST.settings.model_copy(update={"host_prep": prep.model_copy(update={"package_repo": repo})})
    host = HOST.__class__(**{**HOST.__dict__, "settings": settings})
    apt, yum = (desired_files(host, PLATFORMS[p])[0].content.decode() for p in ("debian", "el"))
    assert ("[trusted=yes]" in apt) is unsigned and ("gpgcheck=0" in yum) is unsigned
    assert ("gpgcheck=1" in yum) is not unsigned
