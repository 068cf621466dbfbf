"""Load the inventory, validate all of it in one pass, and compute derived values once.

Nothing here opens a connection: a run refuses to start while any problem is found, and every problem
is reported at once, naming the file, the host (or group) and the field.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from groundwork.settings import PLATFORM_WIDE, Ca, Docker, Settings

# The pipeline's order of groups; each inventory group must be one of these.
KNOWN_GROUPS = ("proxy", "ops", "master_compute", "etcd")
DOCKER_GROUPS = ("master_compute", "ops")  # the hosts docker runs on, the only ones that need a bip
HOST_KEYS = {"hostname", "groups", "data", "username", "port", "platform", "connection_options"}
GROUP_KEYS = {"data", "username", "port", "platform", "connection_options", "groups"}
# Never in the inventory, at any depth of an entry (netmiko's `secret` is the enable password): the one
# secret source is the environment or the secrets file (groundwork/secrets.py).
SECRET_KEYS = {"password", "passphrase", "secret"}
EXTRAS_FIELD = "connection_options.netmiko.extras"
# groundwork's own host key policy, whatever the inventory says: every host key is checked against the
# known_hosts file named by alt_key_file, and only that file (see hostkeys.connect_pinned).
PINNED_EXTRAS = {"ssh_strict": True, "alt_host_keys": True, "system_host_keys": False}
_ASCII_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Problem:
    file: str
    where: str  # host or group name, or "" for the file as a whole
    field: str
    message: str

    def __str__(self) -> str:
        parts = [self.file, self.where, self.field]
        return ": ".join(p for p in parts if p) + f": {self.message}"


class InventoryError(Exception):
    """The inventory cannot be used; `problems` lists everything found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the inventory")

    def report(self) -> str:
        lines = [f"inventory is invalid ({len(self.problems)} problem(s)); no host was contacted:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class HostModel:
    name: str
    address: IPv4Address
    groups: tuple[str, ...]
    settings: Settings
    fqdn: str
    docker_bip: IPv4Interface | None  # docker0's address, the seeds' 172.7.NN.1/24; None where docker never runs
    # netmiko's extras for this host: defaults, groups and host merged key by key, host key policy pinned
    ssh_extras: dict = field(default_factory=dict, compare=False)
    # How to log in, the nearest level's value as Nornir resolves it (host, then its groups in order, then
    # defaults); Nornir's hosts are built from these (nornir_inventory.py), not from the files a second time.
    ssh_user: str | None = None
    ssh_port: int | None = None
    platform: str = "linux"

    def in_group(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True)
class Inventory:
    directory: Path
    hosts: dict[str, HostModel]
    defaults: Settings
    digest_source: bytes = field(repr=False, default=b"")
    warnings: tuple[str, ...] = ()  # not refused, but worth a look (an even number of etcd members)

    def group_members(self, group: str) -> list[HostModel]:
        return [h for h in self.hosts.values() if group in h.groups]

    @property
    def ops_host(self) -> HostModel:
        return self.group_members("ops")[0]

    @property
    def dns_primary(self) -> HostModel:
        """The first proxy host serves the zones; the other proxy hosts are its secondaries."""
        return self.group_members("proxy")[0]

    @property
    def dns_secondaries(self) -> list[HostModel]:
        return self.group_members("proxy")[1:]

    @property
    def lb_vip(self) -> IPv4Address:
        return lb_vip(self.defaults)

    @property
    def lb_backends(self) -> list[IPv4Address]:
        """The apiservers behind the L4 proxy: data.lb.backends, else every master_compute host."""
        return list(self.defaults.lb.backends) or [h.address for h in self.group_members("master_compute")]

    def vrrp_priority(self, host: HostModel) -> int:
        """100 for the first proxy host in hosts.yaml, 90 for the second, and so on (the tutorial's 100 and 90)."""
        return 100 - 10 * [h.name for h in self.group_members("proxy")].index(host.name)

    def host_zone_records(self) -> dict[str, IPv4Address]:
        """The host.com zone as in the seeds: HDSS7-NN for every host, and `dns` on the first proxy host."""
        records = {"dns": self.dns_primary.address}
        records.update({h.name.upper(): h.address for h in self.hosts.values()})
        return records

    def service_zone_records(self) -> dict[str, IPv4Address]:
        """The od.com zone: `dns`, the registry's name on the ops host, and extra records from inventory."""
        records = {"dns": self.dns_primary.address}
        registry = self.defaults.registry.name
        domain = "." + self.defaults.service_domain
        if registry.endswith(domain):
            records[registry[: -len(domain)]] = self.ops_host.address
        records.update(self.defaults.dns.records)
        return records

    def zones(self) -> dict[str, dict[str, IPv4Address]]:
        """Zone name -> its records: the host zone, then the service zone."""
        return {self.defaults.host_domain: self.host_zone_records(),
                self.defaults.service_domain: self.service_zone_records()}

    def reverse_zones(self) -> dict[str, dict[str, str]]:
        """The reverse zone of each /24 the hosts' addresses are in (10.4.7.21: 7.4.10.in-addr.arpa) -> the
        last octet of each host's address -> its FQDN: every address resolves back to its host's name."""
        zones: dict[str, dict[str, str]] = {}
        for h in self.hosts.values():
            *network, last = str(h.address).split(".")
            zones.setdefault(".".join(reversed(network)) + ".in-addr.arpa", {})[last] = h.fqdn
        return zones

    def zone_names(self) -> list[str]:
        """Every zone the DNS servers serve: the host zone, the service zone, then the reverse zones."""
        return [*self.zones(), *self.reverse_zones()]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a duplicate host name must be an error instead."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            loader.duplicates.append((key, seen[key], key_node.start_mark.line + 1))
        else:
            seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(path: Path, problems: list[Problem]) -> dict:
    rel = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        problems.append(Problem(rel, "", "", f"cannot read: {exc.strerror}"))
        return {}
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problems.append(Problem(rel, where, "", f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return {}
    finally:
        loader.dispose()
    for key, first, again in loader.duplicates:
        problems.append(Problem(rel, str(key), "", f"defined twice (lines {first} and {again})"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(rel, "", "", f"must be a mapping, found {type(data).__name__}"))
        return {}
    return data


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _settings_problems(exc: ValidationError, file: str, where: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p != "[key]"]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in err and err["type"] not in ("missing",) and repr(err["input"]) not in message:
            message = f"{message} (got {err['input']!r})"
        out.append(Problem(file, where, "data." + ".".join(loc), message))
    return out


def _check_entry_keys(entry: Any, allowed: set[str], file: str, where: str, problems: list[Problem]) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        problems.append(Problem(file, where, "", f"must be a mapping, found {type(entry).__name__}"))
        return {}
    for key in entry:
        if key not in allowed and key not in SECRET_KEYS:
            problems.append(Problem(file, where, str(key), "unknown key"))
    for path in _secret_paths(entry):
        problems.append(Problem(file, where, path, "secrets do not belong in the inventory: set "
                                "GROUNDWORK_SSH_PASSWORD or ssh_password in the secrets file instead"))
    for path in _credential_urls(entry):
        problems.append(Problem(file, where, path, "a URL carrying a password (scheme://user:password@...): "
                                "secrets do not belong in the inventory; its value is not shown"))
    if "data" in entry and not isinstance(entry["data"] or {}, dict):
        problems.append(Problem(file, where, "data", "must be a mapping"))
    if entry.get("port") is not None and not (isinstance(entry["port"], int) and not isinstance(entry["port"], bool)
                                              and 1 <= entry["port"] <= 65535):
        problems.append(Problem(file, where, "port",
                                f"must be a TCP port number from 1 to 65535 (got {entry['port']!r})"))
    options = entry.get("connection_options")
    if options is not None and not isinstance(options, dict):
        problems.append(Problem(file, where, "connection_options", "must be a mapping"))
    elif options and not isinstance((options.get("netmiko") or {}).get("extras") or {}, dict):
        problems.append(Problem(file, where, EXTRAS_FIELD, "must be a mapping"))
    if "groups" in entry and entry["groups"] is not None:
        groups = entry["groups"]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            problems.append(Problem(file, where, "groups", f"must be a list of group names (got {groups!r})"))
            entry = {**entry, "groups": []}
    return entry


def _secret_paths(value: Any, prefix: str = "") -> list[str]:
    """Where a secret key stands in an entry, as dotted fields (data is left out: unknown keys fail there)."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}{key}"
            if key in SECRET_KEYS:
                found.append(path)
            elif not (prefix == "" and key == "data"):
                found += _secret_paths(inner, path + ".")
    elif isinstance(value, list):
        for inner in value:
            found += _secret_paths(inner, prefix)
    return found


# scheme://user:password@host: a secret in a mirror's or a repository's address
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@")


def _credential_urls(value: Any, prefix: str = "") -> list[str]:
    """Where a URL with a password stands in an entry, data included, as dotted fields."""
    if isinstance(value, str):
        return [prefix.rstrip(".") or "(value)"] if _URL_WITH_PASSWORD.search(value) else []
    if isinstance(value, dict):
        return [p for key, inner in value.items() for p in _credential_urls(inner, f"{prefix}{key}.")]
    if isinstance(value, list):
        return [p for inner in value for p in _credential_urls(inner, prefix)]
    return []


def _extras(entry: dict) -> dict:
    options = entry.get("connection_options") if isinstance(entry.get("connection_options"), dict) else {}
    extras = (options.get("netmiko") or {}).get("extras") if isinstance(options.get("netmiko"), dict) else None
    return extras if isinstance(extras, dict) else {}


def _ssh_extras(layers: list[dict], file: str, where: str, problems: list[Problem]) -> dict:
    """netmiko's extras for one host, merged key by key from the defaults up to the host. Nornir takes the
    extras of the nearest level whole, so a group setting conn_timeout alone would drop the defaults' known_hosts
    file and host key checking with it; merged, and with the host key policy pinned, it cannot."""
    merged: dict = {}
    for layer in layers:
        merged.update(layer)
    for key, wanted in PINNED_EXTRAS.items():
        if key in merged and merged[key] is not wanted:
            problems.append(Problem(file, where, f"{EXTRAS_FIELD}.{key}", f"must be {str(wanted).lower()} or left "
                                    "out: groundwork checks every host key against the known_hosts file alt_key_file"))
    if not merged.get("alt_key_file"):
        problems.append(Problem(file, where, f"{EXTRAS_FIELD}.alt_key_file", "missing: the known_hosts file holding "
                                "this host's key (groundwork checks every host key against it)"))
    return {**merged, **PINNED_EXTRAS}


def _check_key_files(entry: dict, file: str, where: str, problems: list[Problem]) -> None:
    """The SSH key and known_hosts files an entry names must exist, or every host would fail alike."""
    extras = _extras(entry)
    for key, what in (("key_file", "SSH private key"), ("alt_key_file", "known_hosts file")):
        path = extras.get(key)
        if path and not Path(str(path)).expanduser().is_file():
            hint = " (the lab writes it: python -m lab up)" if "groundwork-lab" in str(path) else ""
            problems.append(Problem(file, where, f"{EXTRAS_FIELD}.{key}", f"{what} {path} does not exist{hint}"))


def docker_bip(name: str, docker: Docker) -> IPv4Interface | None:
    """The seeds' rule: hdss7-21 gets 172.7.21.1/24, whatever its address (seed 000 puts hdss7-21 at
    172.29.238.165 and still gives it 172.7.21.1/24), so that a container's address names the host it runs on
    (seed 002). The number is the one the host's name ends with; data.docker.bip sets it outright. None when
    the name has no number (or one over 255) and no bip is set."""
    if docker.bip is not None:
        return docker.bip
    number = re.search(r"(\d+)$", name)
    if number is None or int(number.group(1)) > 255:
        return None
    return IPv4Interface(f"172.{docker.bip_octet}.{int(number.group(1))}.1/24")


def load_inventory(directory: Path | str, host_file: str = "hosts.yaml", group_file: str = "groups.yaml",
                   defaults_file: str = "defaults.yaml", key_files: bool = True) -> Inventory:
    """Read and validate an inventory directory; raise InventoryError listing every problem found.

    key_files: check that the SSH key and known_hosts files named exist (off for the lab, which makes them).
    """
    directory = Path(directory)
    problems: list[Problem] = []
    paths = {name: directory / fname for name, fname in
             (("hosts", host_file), ("groups", group_file), ("defaults", defaults_file))}
    raw = {name: _load_yaml(path, problems) for name, path in paths.items()}
    files = {name: str(path) for name, path in paths.items()}

    defaults_entry = _check_entry_keys(raw["defaults"], GROUP_KEYS - {"groups"}, files["defaults"], "", problems)
    if key_files:
        _check_key_files(defaults_entry, files["defaults"], "", problems)
    defaults_data = defaults_entry.get("data") if isinstance(defaults_entry.get("data"), dict) else {}
    # A bad value in defaults or a group is reported there, not again for every host that inherits it.
    inherited: dict[str, set[tuple[str, str]]] = {"": set()}
    defaults = _validated(defaults_data, files["defaults"], "", set(), problems, inherited, "")
    groups = _load_groups(raw["groups"], defaults_data, files["groups"], problems, inherited, key_files)

    hosts: dict[str, HostModel] = {}
    by_address: dict[IPv4Address, str] = {}
    for name, entry in raw["hosts"].items():
        host = _load_host(str(name), entry, groups, defaults_entry, files["hosts"], problems, inherited,
                          by_address, key_files)
        if host is not None:
            hosts[host.name] = host

    _check_bip_overlaps(hosts, files["hosts"], problems)
    _check_group_sizes(hosts, raw["hosts"], files["hosts"], problems)
    warnings = _check_etcd_group(groups, raw["hosts"], files["groups"], problems)
    if defaults is not None:
        _check_names(raw["hosts"], defaults, files["hosts"], problems)
        _check_registry_name(defaults, files["defaults"], problems)
        _check_zones(defaults, files["defaults"], problems)
        _check_lb(defaults, hosts, raw["hosts"], files["defaults"], problems)
        _check_kubernetes(defaults, hosts, files["defaults"], problems)
    if problems:
        raise InventoryError(problems)
    digest_source = b"".join(p.read_bytes() for p in paths.values())
    return Inventory(directory=directory, hosts=hosts, defaults=defaults, digest_source=digest_source,
                     warnings=tuple(warnings))


def _check_etcd_group(groups: dict[str, dict], raw_hosts: dict, file: str, problems: list[Problem]) -> list[str]:
    """A group etcd declared with no host is refused; an even number of members is allowed but warned about:
    it needs as many members up for quorum as one more member would, and tolerates no more failures."""
    if "etcd" not in groups:
        return []
    members = _members(raw_hosts, "etcd")
    if not members:
        problems.append(Problem(file, "etcd", "", "group 'etcd' has no host: add the members to it in hosts.yaml "
                                "(the tutorial's three: hdss7-12, hdss7-21, hdss7-22), or remove the group"))
        return []
    if len(members) % 2 == 0:
        return [f"group etcd has {len(members)} members ({', '.join(members)}): an odd number is better, as "
                f"{len(members)} members need {len(members) // 2 + 1} up, and tolerate no more failures than "
                f"{len(members) - 1}"]
    return []


def _validated(data: dict, file: str, where: str, seen: set, problems: list[Problem],
               inherited: dict[str, set[tuple[str, str]]], key: str) -> Settings | None:
    """The settings of one level, or None; new problems are recorded under `key` so that levels inheriting
    them do not repeat them."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        found = [p for p in _settings_problems(exc, file, where) if (p.field, p.message) not in seen]
        inherited[key] = set(seen) | {(p.field, p.message) for p in found}
        problems += found
        return None


def _load_groups(raw_groups: dict, defaults_data: dict, file: str, problems: list[Problem],
                 inherited: dict[str, set[tuple[str, str]]], key_files: bool) -> dict[str, dict]:
    groups: dict[str, dict] = {}
    for name, entry in raw_groups.items():
        name = str(name)
        entry = _check_entry_keys(entry, GROUP_KEYS, file, name, problems)
        if key_files:
            _check_key_files(entry, file, name, problems)
        if name not in KNOWN_GROUPS:
            problems.append(Problem(file, name, "", f"unknown group (known: {', '.join(KNOWN_GROUPS)})"))
        groups[name] = entry
        inherited[name] = set(inherited[""])
        data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
        _check_platform_wide(data, file, name, problems)
        _validated(_deep_merge(defaults_data, data), file, name, inherited[""], problems, inherited, name)
    return groups


def _load_host(name: str, entry: Any, groups: dict[str, dict], defaults_entry: dict, file: str,
               problems: list[Problem], inherited: dict[str, set[tuple[str, str]]],
               by_address: dict[IPv4Address, str], key_files: bool) -> HostModel | None:
    """One host's model, or None when a problem keeps it from being one (every problem is recorded).
    by_address: the addresses of the hosts before it, to which this one's is added."""
    entry = _check_entry_keys(entry, HOST_KEYS, file, name, problems)
    if not _valid_host_name(name):
        problems.append(Problem(file, name, "", "host name must be a DNS label of ASCII letters, digits and hyphens"))
    address = _host_address(name, entry.get("hostname"), file, problems)
    if address in by_address:
        problems.append(Problem(file, name, "hostname", f"{address} is also the address of {by_address[address]}"))
        address = None
    elif address is not None:
        by_address[address] = name
    host_groups = entry.get("groups") or []
    if not host_groups:
        problems.append(Problem(file, name, "groups", f"missing: one of {', '.join(KNOWN_GROUPS)}"))
    for group in host_groups:
        if group not in groups:
            problems.append(Problem(file, name, "groups", f"unknown group {group!r} "
                                    f"(known: {', '.join(sorted(groups)) or 'none'})"))
    _check_platform_wide(entry.get("data") if isinstance(entry.get("data"), dict) else {}, file, name, problems)
    # The first group listed wins, as in Nornir; the host's own values win over its groups'.
    levels = [defaults_entry, *(groups.get(g, {}) for g in reversed(host_groups)), entry]
    data: dict = {}
    for level in levels:
        data = _deep_merge(data, level.get("data") if isinstance(level.get("data"), dict) else {})
    extras = _ssh_extras([_extras(level) for level in levels], file, name, problems)
    if key_files:
        _check_key_files(entry, file, name, problems)
    seen = set().union(*(inherited.get(g, inherited[""]) for g in host_groups)) if host_groups else inherited[""]
    settings = _validated(data, file, name, seen, problems, {}, name)
    if address is None:
        return None
    net = settings.network if settings else _network_of(data)
    if net is None:
        return None  # its settings are invalid, network included: that problem is reported already
    if address not in net:
        problems.append(Problem(file, name, "hostname", f"{address} is outside the network {net} (data.network)"))
    elif address in (net.network_address, net.broadcast_address):
        problems.append(Problem(file, name, "hostname", f"{address} is the network or broadcast address of {net}"))
    if settings is None:
        return None
    if settings.ca.cfssl_dir:
        settings = _with_cfssl_ca(settings, file, name, problems)
    runs_docker = bool(set(host_groups) & set(DOCKER_GROUPS))
    bip = docker_bip(name, settings.docker) if runs_docker else None
    if bip is None and runs_docker:
        problems.append(Problem(file, name, "data.docker.bip", "missing: docker0's address comes from the number "
                                "the host's name ends with (hdss7-21 gets 172.7.21.1/24) and this name has none "
                                "from 0 to 255; set data.docker.bip for this host, like 172.7.30.1/24"))
        return None
    if bip is not None and bip.network.overlaps(net):
        problems.append(Problem(file, name, "data.docker.bip", f"docker bip {bip} overlaps the host network {net}"))
    login = _login(levels)
    return HostModel(name=name, address=address, groups=tuple(host_groups), settings=settings,
                     fqdn=f"{name}.{settings.host_domain}", docker_bip=bip, ssh_extras=extras,
                     ssh_user=login["username"], ssh_port=login["port"], platform=login["platform"] or "linux")


def _login(levels: list[dict]) -> dict[str, Any]:
    """username, port and platform as Nornir resolves netmiko's connection parameters (levels: defaults first,
    host last): the nearest connection_options.netmiko value of any level, else the nearest level's own."""
    def nearest(key: str, netmiko: bool) -> Any:
        for level in reversed(levels):
            options = level.get("connection_options") if isinstance(level.get("connection_options"), dict) else {}
            where = (options.get("netmiko") if isinstance(options.get("netmiko"), dict) else {}) if netmiko else level
            if where.get(key) is not None:
                return where[key]
        return None
    found = {}
    for key in ("username", "port", "platform"):
        found[key] = nearest(key, netmiko=True)
        if found[key] is None:
            found[key] = nearest(key, netmiko=False)
    return found


def _check_platform_wide(data: dict, file: str, where: str, problems: list[Problem]) -> None:
    for key in data:
        if key in PLATFORM_WIDE:
            problems.append(Problem(file, where, f"data.{key}", f"platform-wide: set it in defaults.yaml only "
                                    f"({PLATFORM_WIDE[key]})"))


def _host_address(name: str, hostname: Any, file: str, problems: list[Problem]) -> IPv4Address | None:
    if hostname is None:
        problems.append(Problem(file, name, "hostname", "missing: the IPv4 address to connect to"))
        return None
    try:
        address = ip_address(str(hostname))
        if address.version == 4:
            return address
    except ValueError:
        pass
    problems.append(Problem(file, name, "hostname", f"{hostname!r} is not a valid IPv4 address"))
    return None


def _check_names(raw_hosts: dict, defaults: Settings, file: str, problems: list[Problem]) -> None:
    """Host names become DNS records: two that differ only by case would be one record, and a host named like
    a zone's own record (dns, the registry) would take its place."""
    seen: dict[str, str] = {}
    for name in (str(n) for n in raw_hosts):
        other = seen.setdefault(name.lower(), name)
        if other != name:
            problems.append(Problem(file, name, "", f"differs from host {other} only by case: DNS names are not "
                                    "case-sensitive, so both would be one record"))
    reserved = _reserved_records(defaults)
    for name in (str(n) for n in raw_hosts):
        if name.lower() in reserved:
            problems.append(Problem(file, name, "", f"a host may not be named {name!r}: that name is the zone "
                                    f"record {reserved[name.lower()]}"))


def _reserved_records(settings: Settings) -> dict[str, str]:
    """Record names the zones define themselves, lower case -> what they are."""
    reserved = {"dns": "of the DNS server (dns.<zone>)"}
    registry, domain = settings.registry.name, "." + settings.service_domain
    if registry.endswith(domain):
        reserved[registry[: -len(domain)].lower()] = f"of the registry ({registry})"
    reserved.update({name.lower(): f"{name}.{settings.service_domain} (data.dns.records)"
                     for name in settings.dns.records})
    return reserved


def _check_zones(defaults: Settings, file: str, problems: list[Problem]) -> None:
    if defaults.host_domain.lower() == defaults.service_domain.lower():
        problems.append(Problem(file, "", "data.service_domain", f"must differ from host_domain "
                                f"({defaults.host_domain}): the two zones hold different records (the seeds: "
                                "host.com for hosts, od.com for services)"))
    registry, domain = defaults.registry.name.lower(), "." + defaults.service_domain.lower()
    own = {"dns"} | ({registry[: -len(domain)]} if registry.endswith(domain) else set())
    for name in defaults.dns.records:
        if name.lower() in own:
            problems.append(Problem(file, "", f"data.dns.records.{name}", f"{name}.{defaults.service_domain} is "
                                    "defined by groundwork itself (the DNS server, or the registry on the ops host); "
                                    "a record here would silently replace its address"))


def _members(raw_hosts: dict, group: str) -> list[str]:
    """The hosts hosts.yaml puts in a group, whether or not each is valid otherwise."""
    return [str(n) for n, e in raw_hosts.items() if isinstance(e, dict) and group in (e.get("groups") or [])]


def lb_vip(settings: Settings) -> IPv4Address:
    """The apiservers' VIP: data.lb.vip, else the network's address 10 (10.4.7.10, as the tutorial)."""
    return settings.lb.vip or settings.network.network_address + 10


def _check_lb(defaults: Settings, hosts: dict[str, HostModel], raw_hosts: dict, file: str,
              problems: list[Problem]) -> None:
    """The VIP must be a free address of the network; the proxy needs somewhere to send connections."""
    lb, net = defaults.lb, defaults.network
    vip = lb_vip(defaults)
    what = "data.lb.vip" if lb.vip else "the default VIP (the network's address 10; set data.lb.vip)"
    holder = next((h.name for h in hosts.values() if h.address == vip), None)
    if vip not in net:
        problems.append(Problem(file, "", "data.lb.vip", f"{vip} is outside the network {net} (data.network): "
                                "keepalived moves it between proxy hosts on that network"))
    elif vip in (net.network_address, net.broadcast_address):
        problems.append(Problem(file, "", "data.lb.vip", f"{vip} is the network or broadcast address of {net}"))
    elif holder:
        problems.append(Problem(file, "", "data.lb.vip", f"{what} {vip} is the address of {holder}: the VIP must be "
                                "an address no host has"))
    if not lb.backends and not _members(raw_hosts, "master_compute"):
        problems.append(Problem(file, "", "data.lb.backends", "empty, and no host is in group master_compute: the "
                                "L4 proxy needs the apiservers' addresses"))
    proxies = _members(raw_hosts, "proxy")
    if lb.vrrp and len(proxies) > 10:
        problems.append(Problem(file, "", "data.lb.vrrp", f"{len(proxies)} proxy hosts: VRRP priorities 100, 90 ... "
                                "10 from the hosts' order cover at most ten (or set vrrp: false)"))


def _check_kubernetes(defaults: Settings, hosts: dict[str, HostModel], file: str, problems: list[Problem]) -> None:
    """The service range must be nobody else's: a ClusterIP that is also a host's or a pod's address would take
    that address's traffic on every node (kube-proxy's rules come first)."""
    k = defaults.kubernetes
    if not k.enabled:
        return
    taken = {f"the network {defaults.network} (data.network)": defaults.network}
    for h in (h for h in hosts.values() if h.docker_bip is not None):
        taken.setdefault(f"the pod range {h.docker_bip.network.supernet(new_prefix=16)} (docker0 of {h.name})",
                         h.docker_bip.network.supernet(new_prefix=16))
    for what, net in taken.items():
        if k.service_cidr.overlaps(net):
            problems.append(Problem(file, "", "data.kubernetes.service_cidr",
                                    f"{k.service_cidr} overlaps {what}: choose a range no host or pod uses "
                                    "(and cluster_dns inside it)"))
            break


def _check_registry_name(defaults: Settings, file: str, problems: list[Problem]) -> None:
    """The registry's name must be one the DNS stage serves."""
    name, domain = defaults.registry.name, defaults.service_domain
    if not name.endswith("." + domain):
        problems.append(Problem(file, "", "data.registry.name", f"{name} does not resolve: it is not in the "
                                f"service domain {domain}, the zone the DNS stage serves (the seeds use "
                                f"harbor.{domain})"))


def _with_cfssl_ca(settings: Settings, file: str, where: str, problems: list[Problem]) -> Settings:
    """The CA settings read from an operator's cfssl ca-csr.json and ca-config.json, as they are."""
    from groundwork.pki import PkiError, settings_from_cfssl

    folder = Path(settings.ca.cfssl_dir).expanduser()
    field = "data.ca.cfssl_dir"
    try:
        csr = (folder / "ca-csr.json").read_text()
        config = (folder / "ca-config.json").read_text() if (folder / "ca-config.json").exists() else None
        values = settings_from_cfssl(csr, config)
        ca = Ca.model_validate({**values, "dir": settings.ca.dir, "cfssl_dir": settings.ca.cfssl_dir})
    except OSError as exc:
        problems.append(Problem(file, where, field, f"cannot read {folder}/ca-csr.json: {exc.strerror}"))
        return settings
    except (PkiError, ValidationError) as exc:
        problems.append(Problem(file, where, field, f"{folder}/ca-csr.json: {exc}"))
        return settings
    return settings.model_copy(update={"ca": ca})


def _network_of(data: dict) -> IPv4Network | None:
    """The network setting alone, when other settings of the host are invalid."""
    try:
        return IPv4Network(str(data.get("network", Settings.model_fields["network"].default)))
    except ValueError:
        return None


def _valid_host_name(name: str) -> bool:
    return bool(_ASCII_LABEL.fullmatch(name))


def _check_bip_overlaps(hosts: dict[str, HostModel], file: str, problems: list[Problem]) -> None:
    seen: dict[IPv4Network, str] = {}
    for host in (h for h in hosts.values() if h.docker_bip is not None):
        other = seen.get(host.docker_bip.network)
        if other:
            problems.append(Problem(file, host.name, "data.docker.bip",
                                    f"docker bip {host.docker_bip} is also the bip of {other}"))
        seen.setdefault(host.docker_bip.network, host.name)
        for peer in hosts.values():
            if peer.address in host.docker_bip.network:
                problems.append(Problem(file, host.name, "data.docker.bip",
                                        f"docker bip {host.docker_bip} contains {peer.name}'s address {peer.address}"))


def _check_group_sizes(hosts: dict[str, HostModel], raw_hosts: dict, file: str, problems: list[Problem]) -> None:
    ops = _members(raw_hosts, "ops")
    if len(ops) != 1:
        problems.append(Problem(file, "", "groups", f"exactly one host must be in group 'ops', found {len(ops)}"
                                + (f" ({', '.join(ops)})" if ops else "")))
    if not _members(raw_hosts, "proxy"):
        problems.append(Problem(file, "", "groups", "at least one host must be in group 'proxy' (the DNS servers)"))
