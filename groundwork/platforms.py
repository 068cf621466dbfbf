"""What differs between Debian-family and EL hosts for every stage: the package manager and where a package
repository is declared. What differs for one stage only (bind9's files, etcd's, the registry's) is a table beside
that stage: dns.BIND, dnsmasq.DNSMASQ, etcd.ETCD, registry.REGISTRY."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from groundwork.changes import CommandChange, value_diff
from groundwork.facts import OsInfo


class UnsupportedHost(Exception):
    pass


@dataclass(frozen=True)
class Platform:
    family: str  # key into settings that differ by family (base_packages)
    repo_file: str  # where a package repository is declared; {name} is the repository's name
    repo_template: str
    refresh_index: str  # fetch the package lists again
    install: str  # install packages, without questions; {packages} are the names

    def install_command(self, packages: list[str]) -> str:
        return self.install.format(packages=" ".join(shlex.quote(p) for p in packages))


def candidate_platforms(family: str | None) -> list["Platform"]:
    """The platforms a host may be on: its own when the run knows its OS family (read with the host's lock),
    else every one (the gather then tells)."""
    return [PLATFORMS[family]] if family in PLATFORMS else list(PLATFORMS.values())


def candidate_packages(by_family: dict[str, list[str]], family: str | None) -> list[str]:
    """The package names a stage probes for: its host's family's when known, else every family's."""
    families = [family] if family in PLATFORMS else list(by_family)
    return sorted({p for f in families for p in by_family.get(f, [])})


PLATFORMS = {
    "debian": Platform("debian", "/etc/apt/sources.list.d/{name}.list", "host_prep/apt-source.list.j2",
                       refresh_index="apt-get update -qq",
                       install="apt-get install -y -qq --no-install-recommends {packages}"),
    "el": Platform("el", "/etc/yum.repos.d/{name}.repo", "host_prep/yum.repo.j2",
                   refresh_index="yum makecache -q", install="yum install -y -q {packages}"),
}


def install_missing(platform: Platform, wanted: list[str], installed: dict[str, str | None]) -> list[CommandChange]:
    """The change that installs the wanted packages not installed yet (index refreshed first), or none."""
    missing = [p for p in wanted if installed.get(p) is None]
    if not missing:
        return []
    return [CommandChange(f"install {' '.join(missing)}", [platform.refresh_index, platform.install_command(missing)],
                          "".join(value_diff(f"package {p}", None, "installed") for p in missing))]


def platform_for(os: OsInfo) -> Platform:
    try:
        return PLATFORMS[os.family]
    except KeyError:
        raise UnsupportedHost(f"unsupported operating system {os.pretty_name or os.id or 'unknown'!r} "
                              f"(supported: Debian family, EL family)") from None
