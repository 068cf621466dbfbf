"""Load the inventory, validate all of it in one pass, and compute derived values once.

Nothing here opens a connection: a run refuses to start while any problem is found, and every problem
is reported at once, naming the file, the host (or group) and the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from groundwork.settings import Ca, Settings

# The pipeline's order of groups; each inventory group must be one of these.
KNOWN_GROUPS = ("proxy", "ops", "master_compute")
HOST_KEYS = {"hostname", "groups", "data", "username", "port", "platform", "connection_options"}
GROUP_KEYS = {"data", "username", "port", "platform", "connection_options", "groups"}
SECRET_KEYS = {"password"}


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
    docker_bip: IPv4Interface  # docker0's address, the seeds' 172.7.NN.1/24

    def in_group(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True)
class Inventory:
    directory: Path
    hosts: dict[str, HostModel]
    defaults: Settings
    digest_source: bytes = field(repr=False, default=b"")

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


def _check_entry_keys(entry: Any, allowed: set[str], file: str, where: str, problems: list[Problem],
                      key_files: bool = True) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        problems.append(Problem(file, where, "", f"must be a mapping, found {type(entry).__name__}"))
        return {}
    for key in entry:
        if key in SECRET_KEYS:
            problems.append(Problem(file, where, key, "secrets do not belong in the inventory; "
                                    "set GROUNDWORK_SSH_PASSWORD in the environment instead"))
        elif key not in allowed:
            problems.append(Problem(file, where, str(key), "unknown key"))
    if "data" in entry and not isinstance(entry["data"] or {}, dict):
        problems.append(Problem(file, where, "data", "must be a mapping"))
    if key_files:
        _check_key_files(entry, file, where, problems)
    return entry


def _check_key_files(entry: dict, file: str, where: str, problems: list[Problem]) -> None:
    """The SSH key and known_hosts files named for a connection must exist, or every host would fail alike."""
    options = entry.get("connection_options") or {}
    extras = ((options.get("netmiko") or {}) if isinstance(options, dict) else {}).get("extras") or {}
    if not isinstance(extras, dict):
        return
    for key, what in (("key_file", "SSH private key"), ("alt_key_file", "known_hosts file")):
        path = extras.get(key)
        if path and not Path(str(path)).expanduser().is_file():
            hint = " (the lab writes it: python -m lab up)" if "groundwork-lab" in str(path) else ""
            problems.append(Problem(file, where, f"connection_options.netmiko.extras.{key}",
                                    f"{what} {path} does not exist{hint}"))


def docker_bip(address: IPv4Address, bip_octet: int) -> IPv4Interface:
    """The seeds' rule: 10.4.7.21 gets 172.7.21.1/24, so a container's address names its host."""
    return IPv4Interface(f"172.{bip_octet}.{address.packed[3]}.1/24")


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

    defaults_entry = _check_entry_keys(raw["defaults"], GROUP_KEYS - {"groups"}, files["defaults"], "", problems,
                                       key_files)
    defaults_data = (defaults_entry.get("data") or {}) if isinstance(defaults_entry.get("data"), dict) else {}
    # A bad value in defaults or a group is reported there, not again for every host that inherits it.
    inherited: dict[str, set[tuple[str, str]]] = {"": set()}

    def settings_problems(exc: ValidationError, file: str, where: str, seen: set) -> list[Problem]:
        found = [p for p in _settings_problems(exc, file, where) if (p.field, p.message) not in seen]
        return found

    try:
        defaults = Settings.model_validate(defaults_data)
    except ValidationError as exc:
        found = _settings_problems(exc, files["defaults"], "")
        inherited[""] = {(p.field, p.message) for p in found}
        problems += found
        defaults = Settings()

    groups: dict[str, dict] = {}
    for name, entry in raw["groups"].items():
        entry = _check_entry_keys(entry, GROUP_KEYS, files["groups"], str(name), problems, key_files)
        if name not in KNOWN_GROUPS:
            problems.append(Problem(files["groups"], str(name), "", f"unknown group (known: {', '.join(KNOWN_GROUPS)})"))
        groups[str(name)] = entry
        data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
        inherited[str(name)] = set(inherited[""])
        try:
            Settings.model_validate(_deep_merge(defaults_data, data))
        except ValidationError as exc:
            found = settings_problems(exc, files["groups"], str(name), inherited[""])
            inherited[str(name)] |= {(p.field, p.message) for p in found}
            problems += found

    hosts: dict[str, HostModel] = {}
    by_address: dict[IPv4Address, str] = {}
    for name, entry in raw["hosts"].items():
        name = str(name)
        hfile = files["hosts"]
        entry = _check_entry_keys(entry, HOST_KEYS, hfile, name, problems, key_files)
        if not _valid_host_name(name):
            problems.append(Problem(hfile, name, "", "host name must be a DNS label (letters, digits, hyphens)"))

        address = None
        hostname = entry.get("hostname")
        if hostname is None:
            problems.append(Problem(hfile, name, "hostname", "missing: the IPv4 address to connect to"))
        else:
            try:
                address = ip_address(str(hostname))
                if address.version != 4:
                    raise ValueError
            except ValueError:
                problems.append(Problem(hfile, name, "hostname", f"{hostname!r} is not a valid IPv4 address"))
                address = None

        host_groups = entry.get("groups") or []
        if not isinstance(host_groups, list):
            problems.append(Problem(hfile, name, "groups", "must be a list of group names"))
            host_groups = []
        if not host_groups:
            problems.append(Problem(hfile, name, "groups", f"missing: one of {', '.join(KNOWN_GROUPS)}"))
        for group in host_groups:
            if group not in groups:
                problems.append(Problem(hfile, name, "groups", f"unknown group {group!r} "
                                        f"(known: {', '.join(sorted(groups)) or 'none'})"))

        data = defaults_data
        for group in reversed(host_groups):  # the first group listed wins, as in Nornir
            gdata = groups.get(group, {}).get("data")
            data = _deep_merge(data, gdata if isinstance(gdata, dict) else {})
        hdata = entry.get("data")
        data = _deep_merge(data, hdata if isinstance(hdata, dict) else {})
        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            seen = set().union(*(inherited.get(g, inherited[""]) for g in host_groups)) if host_groups \
                else inherited[""]
            problems += settings_problems(exc, hfile, name, seen)
            settings = None
        if address is None:
            continue

        if address in by_address:
            problems.append(Problem(hfile, name, "hostname", f"{address} is also the address of {by_address[address]}"))
            continue
        by_address[address] = name
        net = settings.network if settings else _network_of(data)
        if net is None:
            continue  # its settings are invalid, network included: that problem is reported already
        if address not in net:
            problems.append(Problem(hfile, name, "hostname", f"{address} is outside the network {net} (data.network)"))
        elif address in (net.network_address, net.broadcast_address):
            problems.append(Problem(hfile, name, "hostname", f"{address} is the network or broadcast address of {net}"))
        if settings is None:
            continue
        if settings.ca.cfssl_dir:
            settings = _with_cfssl_ca(settings, hfile, name, problems)
        bip = docker_bip(address, settings.docker.bip_octet)
        if bip.network.overlaps(net):
            problems.append(Problem(hfile, name, "data.docker.bip_octet",
                                    f"docker bip {bip} overlaps the host network {net}"))
        hosts[name] = HostModel(name=name, address=address, groups=tuple(host_groups), settings=settings,
                                fqdn=f"{name}.{settings.host_domain}", docker_bip=bip)

    _check_bip_overlaps(hosts, files["hosts"], problems)
    _check_group_sizes(hosts, raw["hosts"], files["hosts"], problems)
    if defaults is not None:
        _check_registry_name(defaults, files["defaults"], problems)
    if problems:
        raise InventoryError(problems)
    digest_source = b"".join(p.read_bytes() for p in paths.values())
    return Inventory(directory=directory, hosts=hosts, defaults=defaults, digest_source=digest_source)


def _check_registry_name(defaults: Settings, file: str, problems: list[Problem]) -> None:
    """The registry's name must be one the DNS stage serves, and docker must be allowed plain http to it."""
    name, domain = defaults.registry.name, defaults.service_domain
    if not name.endswith("." + domain):
        problems.append(Problem(file, "", "data.registry.name", f"{name} does not resolve: it is not in the "
                                f"service domain {domain}, the zone the DNS stage serves (the seeds use "
                                f"harbor.{domain})"))
    if name not in defaults.docker.insecure_registries:
        problems.append(Problem(file, "", "data.docker.insecure_registries", f"must list the registry {name}: it "
                                "is served over plain http behind nginx, as in the seeds"))


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
    return bool(name) and len(name) <= 63 and name[0].isalnum() and name[-1].isalnum() and all(
        c.isalnum() or c == "-" for c in name)


def _check_bip_overlaps(hosts: dict[str, HostModel], file: str, problems: list[Problem]) -> None:
    seen: dict[IPv4Network, str] = {}
    for host in hosts.values():
        other = seen.get(host.docker_bip.network)
        if other:
            problems.append(Problem(file, host.name, "data.docker.bip_octet",
                                    f"docker bip {host.docker_bip} is also the bip of {other}"))
        seen.setdefault(host.docker_bip.network, host.name)
        for peer in hosts.values():
            if peer.address in host.docker_bip.network:
                problems.append(Problem(file, host.name, "data.docker.bip_octet",
                                        f"docker bip {host.docker_bip} contains {peer.name}'s address {peer.address}"))


def _check_group_sizes(hosts: dict[str, HostModel], raw_hosts: dict, file: str, problems: list[Problem]) -> None:
    def members(group: str) -> list[str]:
        return [str(n) for n, e in raw_hosts.items() if isinstance(e, dict) and group in (e.get("groups") or [])]

    ops = members("ops")
    if len(ops) != 1:
        problems.append(Problem(file, "", "groups", f"exactly one host must be in group 'ops', found {len(ops)}"
                                + (f" ({', '.join(ops)})" if ops else "")))
    if not members("proxy"):
        problems.append(Problem(file, "", "groups", "at least one host must be in group 'proxy' (the DNS servers)"))
