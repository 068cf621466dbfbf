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
    directory: str  # named's working directory (options { directory })
    # Files named.conf includes besides groundwork's zones, where the options file is the whole named.conf (EL).
    includes: tuple[str, ...] = ()
    service: str = "named"


@dataclass(frozen=True)
class RegistryLayout:
    """The registry component Harbor embeds (distribution), and what the harbor backend needs of the OS."""
    packages: tuple[str, ...]  # the registry, and htpasswd to make its bcrypt entries
    service: str
    config: str
    htpasswd: str
    group: str  # the registry's group, which must read htpasswd
    compose_packages: tuple[str, ...]  # for Harbor's install.sh
    front_packages: tuple[str, ...] = ("nginx", "curl")


@dataclass(frozen=True)
class DnsmasqLayout:
    packages: tuple[str, ...] = ("dnsmasq",)
    # Both families read /etc/dnsmasq.d (Debian's CONFIG_DIR, EL's conf-dir).
    conf: str = "/etc/dnsmasq.d/groundwork.conf"
    service: str = "dnsmasq"


@dataclass(frozen=True)
class EtcdLayout:
    env_file: str  # the ETCD_* variables etcd's unit reads
    service: str = "etcd"
    user: str = "etcd"


@dataclass(frozen=True)
class Platform:
    family: str  # key into settings that differ by family (base_packages)
    repo_file: str  # where a package repository is declared; {name} is the repository's name
    repo_template: str
    refresh_index: str  # fetch the package lists again
    install: str  # install packages, without questions; {packages} are the names
    bind: BindLayout
    registry: RegistryLayout
    etcd: EtcdLayout
    dnsmasq: DnsmasqLayout = DnsmasqLayout()

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
                       install="apt-get install -y -qq --no-install-recommends {packages}",
                       bind=BindLayout(("bind9", "bind9-utils", "bind9-dnsutils"), "/etc/bind/named.conf",
                                       "/etc/bind/named.conf.options", "/etc/bind/named.conf.local",
                                       "/var/lib/bind", "bind", directory="/var/cache/bind"),
                       registry=RegistryLayout(("docker-registry", "apache2-utils"), "docker-registry",
                                               "/etc/docker/registry/config.yml", "/etc/docker/registry/htpasswd",
                                               "docker-registry", ("docker-compose",)),
                       etcd=EtcdLayout("/etc/default/etcd")),
    "el": Platform("el", "/etc/yum.repos.d/{name}.repo", "host_prep/yum.repo.j2",
                   refresh_index="yum makecache -q", install="yum install -y -q {packages}",
                   bind=BindLayout(("bind", "bind-utils"), "/etc/named.conf", "/etc/named.conf",
                                   "/etc/named.groundwork.zones", "/var/named", "named", directory="/var/named",
                                   includes=("/etc/named.rfc1912.zones", "/etc/named.root.key")),
                   # EL's distribution package (not exercised in the lab, which is Debian)
                   registry=RegistryLayout(("docker-distribution", "httpd-tools"), "docker-distribution",
                                           "/etc/docker-distribution/registry/config.yml",
                                           "/etc/docker-distribution/registry/htpasswd", "root",
                                           ("docker-compose-plugin",)),
                   etcd=EtcdLayout("/etc/etcd/etcd.conf")),
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
