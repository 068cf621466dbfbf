"""Everything that differs between Debian-family and EL hosts, in one place."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from groundwork.changes import CommandChange, value_diff
from groundwork.facts import OsInfo


class UnsupportedHost(Exception):
    pass


@dataclass(frozen=True)
class BindLayout:
    packages: tuple[str, ...]
    main_conf: str  # the file named reads first; checked whole with named-checkconf -z
    options_conf: str  # where the options block goes (the whole named.conf on EL)
    zones_conf: str  # where groundwork's zone statements go
    zone_dir: str
    group: str  # named's group, which must read the zone files
    service: str = "named"


@dataclass(frozen=True)
class DnsmasqLayout:
    packages: tuple[str, ...] = ("dnsmasq",)
    conf: str = "/etc/dnsmasq.d/groundwork.conf"  # both families read /etc/dnsmasq.d (Debian's CONFIG_DIR, EL's conf-dir)
    service: str = "dnsmasq"


@dataclass(frozen=True)
class Platform:
    family: str  # key into settings that differ by family (base_packages)
    repo_file: str  # where a package repository is declared; {name} is the repository's name
    repo_template: str
    refresh_index: str  # fetch the package lists again
    install: str  # install packages, without questions; {packages} are the names
    bind: BindLayout
    dnsmasq: DnsmasqLayout = DnsmasqLayout()

    def install_command(self, packages: list[str]) -> str:
        return self.install.format(packages=" ".join(shlex.quote(p) for p in packages))


PLATFORMS = {
    "debian": Platform("debian", "/etc/apt/sources.list.d/{name}.list", "host_prep/apt-source.list.j2",
                       refresh_index="apt-get update -qq",
                       install="apt-get install -y -qq --no-install-recommends {packages}",
                       bind=BindLayout(("bind9", "bind9-utils", "bind9-dnsutils"), "/etc/bind/named.conf",
                                       "/etc/bind/named.conf.options", "/etc/bind/named.conf.local",
                                       "/var/lib/bind", "bind")),
    "el": Platform("el", "/etc/yum.repos.d/{name}.repo", "host_prep/yum.repo.j2",
                   refresh_index="yum makecache -q", install="yum install -y -q {packages}",
                   bind=BindLayout(("bind", "bind-utils"), "/etc/named.conf", "/etc/named.conf",
                                   "/etc/named.groundwork.zones", "/var/named", "named")),
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
