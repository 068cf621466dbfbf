"""The OS family is known once per host, from the lock taken before the first stage: a stage's gather reads it
from there, and probes and digests only that family's packages and files."""

from groundwork.facts import OsInfo, os_info, packages
from groundwork.inventory import load_inventory
from groundwork.tasks import docker, host_prep
from tests.conftest import copy_seed_inventory

DEBIAN = OsInfo("debian", (), "12", "Debian GNU/Linux 12 (bookworm)", "6.1.0")


def test_a_gather_takes_a_known_fact_without_asking_the_host(local_remote):
    local_remote.known["os"] = DEBIAN
    facts = local_remote.gather([os_info(), packages(["coreutils"])])
    assert facts["os"] is DEBIAN
    assert "os-release" not in local_remote.executed[-1]  # not asked again
    assert "coreutils" in local_remote.executed[-1]


def probed_packages(probes) -> set[str]:
    return {word for p in probes if p.key == "packages" for word in p.script.split()}


def test_a_known_family_probes_only_its_own_packages_and_files(tmp_path):
    host = load_inventory(copy_seed_inventory(tmp_path)).hosts["hdss7-21"]
    d = host.settings.docker.packages
    debian_only, el_only = set(d["debian"]) - set(d["el"]), set(d["el"]) - set(d["debian"])
    assert debian_only and el_only
    unknown, known = probed_packages(docker.stage_probes(host)), probed_packages(docker.stage_probes(host, "debian"))
    assert el_only <= unknown and debian_only <= unknown  # not known: every family's
    assert debian_only <= known and not el_only & known
    # host_prep's repository file: only the Debian path when the family is known
    files = lambda probes: next(p.script for p in probes if p.key == "files")  # noqa: E731
    assert "/etc/yum.repos.d" in files(host_prep.stage_probes(host))
    assert "/etc/yum.repos.d" not in files(host_prep.stage_probes(host, "debian"))
