"""Host identity: what to tell the operator when a host's SSH key is unknown or has changed.

The connection itself checks keys (netmiko's ssh_strict with the inventory's known_hosts file, alt_key_file);
this module only turns a refusal into a message with the key the host presented, its fingerprint as
`ssh-keygen -l` prints it, and the commands that trust it. Trusting stays the operator's decision.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import socket

import paramiko

KEYSCAN_TYPES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ecdsa-sha2-nistp256": "ecdsa",
                 "ecdsa-sha2-nistp384": "ecdsa", "ecdsa-sha2-nistp521": "ecdsa"}


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def presented_key(address: str, port: int = 22, timeout: float = 5.0) -> paramiko.PKey | None:
    """The key the host offers in the SSH handshake (no login is attempted), None when it cannot be read."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=timeout)
                return transport.get_remote_server_key()
            finally:
                transport.close()
    except (OSError, paramiko.SSHException, EOFError):
        return None


def _host_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def trust_commands(address: str, port: int, known_hosts: str, key_type: str, replace: bool) -> str:
    entry, path = _host_entry(address, port), shlex.quote(known_hosts)
    scan = f"ssh-keyscan -t {KEYSCAN_TYPES.get(key_type, 'ed25519')} -p {port} {address} >> {path}"
    return (f"ssh-keygen -R {shlex.quote(entry)} -f {path} && {scan}" if replace else scan)


def unknown_key_message(address: str, port: int, known_hosts: str | None) -> str:
    key = presented_key(address, port)
    where = known_hosts or "the known_hosts file"
    offered = f"the host presents {key.get_name()} {fingerprint(key)}" if key else "its key could not be read"
    text = f"host key of {address} is unknown: {where} has no entry for it; {offered}."
    if known_hosts:
        text += (" Check that fingerprint on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
                 f"then trust it: {trust_commands(address, port, known_hosts, key.get_name() if key else '', False)}")
    return text


def changed_key_message(exc: paramiko.BadHostKeyException, address: str, port: int, known_hosts: str | None) -> str:
    where = known_hosts or "the known_hosts file"
    text = (f"host key of {address} has CHANGED: {where} has {exc.expected_key.get_name()} "
            f"{fingerprint(exc.expected_key)}, the host presents {exc.key.get_name()} {fingerprint(exc.key)}. "
            "Nothing was sent to it. If the host was reinstalled, check the new fingerprint on its console, then")
    if known_hosts:
        return text + f" trust it: {trust_commands(address, port, known_hosts, exc.key.get_name(), True)}"
    return text + " replace its entry in the known_hosts file"
