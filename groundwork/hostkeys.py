"""Host identity: every connection checks the host's key against the inventory's known_hosts file.

groundwork's own policy, whatever netmiko's extras say (inventory.PINNED_EXTRAS): a host the known_hosts file
(alt_key_file) has no entry for is never connected to; a host that presents another key than the file's is
refused during the SSH handshake, before anything is sent (netmiko's ssh_strict, paramiko's RejectPolicy), and
the key of every connection made is compared with the file once more. A refusal becomes a message with the
fingerprints as `ssh-keygen -l` prints them and the commands that trust the key: trusting stays the operator's
decision.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

if TYPE_CHECKING:
    from nornir.core.configuration import Config
    from nornir.core.inventory import Host

KEYSCAN_TYPES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ecdsa-sha2-nistp256": "ecdsa",
                 "ecdsa-sha2-nistp384": "ecdsa", "ecdsa-sha2-nistp521": "ecdsa"}


def key_fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class HostKeyError(Exception):
    """The host's key is unknown, or not the one known: nothing was sent to the host."""


def connect_pinned(host: "Host", config: "Config"):
    """The host's nornir-netmiko connection, opened only when the known_hosts file has the host's key and
    kept only when the host presents that key; a connection already open (and so checked) is reused."""
    if "netmiko" in host.connections:
        return host.get_connection("netmiko", config)
    params = host.get_connection_parameters("netmiko")
    extras = params.extras or {}
    address, port, known_hosts = str(params.hostname), params.port or 22, extras.get("alt_key_file")
    if extras.get("ssh_strict") is not True or extras.get("system_host_keys") or not known_hosts:
        # inventory.load_inventory pins these for every host; a caller that bypassed it must not connect.
        raise HostKeyError(f"refusing to connect to {address}: its connection options do not check host keys "
                           "against a known_hosts file (connection_options.netmiko.extras.alt_key_file)")
    known = _known_keys(known_hosts, address, port)
    if not known:
        raise HostKeyError(unknown_key_message(address, port, known_hosts))
    connection = host.get_connection("netmiko", config)
    presented = connection.remote_conn_pre.get_transport().get_remote_server_key()
    if known.get(presented.get_name()) != presented:
        host.close_connection("netmiko")
        expected = next(iter(known.values()))
        raise HostKeyError(changed_key_message(paramiko.BadHostKeyException(address, presented, expected), address,
                                               port, known_hosts))
    return connection


def _known_keys(known_hosts: str, address: str, port: int) -> dict[str, paramiko.PKey]:
    """The keys the known_hosts file holds for the host (hashed entries too), by key type."""
    try:
        keys = paramiko.HostKeys(str(Path(known_hosts).expanduser()))
    except (OSError, paramiko.SSHException) as exc:
        raise HostKeyError(f"cannot read the known_hosts file {known_hosts}: {exc}") from None
    found = keys.lookup(_host_entry(address, port))
    return dict(found) if found else {}


def _host_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def trust_commands(address: str, port: int, known_hosts: str, key_type: str, replace: bool) -> str:
    entry, path = _host_entry(address, port), shlex.quote(known_hosts)
    types = f"-t {KEYSCAN_TYPES[key_type]} " if key_type in KEYSCAN_TYPES else ""
    scan = f"ssh-keyscan {types}-p {port} {address} >> {path}"
    return (f"ssh-keygen -R {shlex.quote(entry)} -f {path} && {scan}" if replace else scan)


def unknown_key_message(address: str, port: int, known_hosts: str) -> str:
    """For a host never connected to: how to see the key it presents, check it, and trust it."""
    return (f"host key of {address} is unknown: {known_hosts} has no entry for it, so groundwork did not connect. "
            f"Compare the fingerprints it presents (ssh-keyscan -p {port} {address} | ssh-keygen -lf -) with its "
            "console's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then trust it: "
            f"{trust_commands(address, port, known_hosts, '', False)}")


def changed_key_message(exc: paramiko.BadHostKeyException, address: str, port: int, known_hosts: str | None) -> str:
    where = known_hosts or "the known_hosts file"
    text = (f"host key of {address} has CHANGED: {where} has {exc.expected_key.get_name()} "
            f"{key_fingerprint(exc.expected_key)}, the host presents {exc.key.get_name()} {key_fingerprint(exc.key)}. "
            "Nothing was sent to it. If the host was reinstalled, check the new fingerprint on its console, then")
    if known_hosts:
        return text + f" trust it: {trust_commands(address, port, known_hosts, exc.key.get_name(), True)}"
    return text + " replace its entry in the known_hosts file"
