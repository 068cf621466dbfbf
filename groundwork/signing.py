"""Signing a run folder's SHA256SUMS with the operator's Ed25519 key, in OpenSSH's signature format.

The signature is what `ssh-keygen -Y sign -n groundwork-run` makes (PROTOCOL.sshsig), made here with
`cryptography`, so an auditor verifies it with a tool every machine has:

    ssh-keygen -Y verify -f allowed_signers -I groundwork -n groundwork-run -s SHA256SUMS.sig < SHA256SUMS

The key is an unencrypted OpenSSH Ed25519 private key (`ssh-keygen -t ed25519 -N '' -f FILE`), named by
GROUNDWORK_SIGNING_KEY or `signing_key` under `groundwork:` in config.yaml; mode 0600, as the secrets file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from groundwork.inventory import InventoryError, Problem

NAMESPACE = "groundwork-run"
PRINCIPAL = "groundwork"  # the identity README's allowed_signers line names
KEY_ENV = "GROUNDWORK_SIGNING_KEY"
MAGIC = b"SSHSIG"
HASH = "sha512"
ARMOR = ("-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----")


class SignatureError(Exception):
    pass


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_line: str  # "ssh-ed25519 AAAA..." as in a .pub file

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_line)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_strings(blob: bytes, count: int) -> tuple[list[bytes], bytes]:
    out = []
    for _ in range(count):
        if len(blob) < 4:
            raise SignatureError("the signature is cut short")
        (size,) = struct.unpack(">I", blob[:4])
        if len(blob) < 4 + size:
            raise SignatureError("the signature is cut short")
        out.append(blob[4:4 + size])
        blob = blob[4 + size:]
    return out, blob


def _public_blob(public_line: str) -> bytes:
    parts = public_line.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise SignatureError(f"not an ssh-ed25519 public key: {public_line[:40]!r}")
    return base64.b64decode(parts[1])


def fingerprint(public_line: str) -> str:
    """As `ssh-keygen -l` prints it: SHA256:<base64 of the key blob's digest, unpadded>."""
    digest = hashlib.sha256(_public_blob(public_line)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _signed_data(message: bytes) -> bytes:
    return MAGIC + _string(NAMESPACE.encode()) + _string(b"") + _string(HASH.encode()) + \
        _string(hashlib.sha512(message).digest())


def sign(message: bytes, key: SigningKey) -> str:
    """The armored SSH signature of message, as `ssh-keygen -Y sign -n groundwork-run` writes it."""
    signature = _string(b"ssh-ed25519") + _string(key.private.sign(_signed_data(message)))
    blob = (MAGIC + struct.pack(">I", 1) + _string(_public_blob(key.public_line)) + _string(NAMESPACE.encode())
            + _string(b"") + _string(HASH.encode()) + _string(signature))
    text = base64.b64encode(blob).decode()
    return "\n".join([ARMOR[0], *(text[i:i + 70] for i in range(0, len(text), 70)), ARMOR[1]]) + "\n"


def verify(message: bytes, armored: str) -> str:
    """The fingerprint of the key whose valid signature of message this is; SignatureError otherwise.
    Who that key belongs to is the caller's question (audit.py compares it with the trusted key)."""
    lines = armored.strip().splitlines()
    if len(lines) < 3 or lines[0] != ARMOR[0] or lines[-1] != ARMOR[1]:
        raise SignatureError("not an SSH signature (no BEGIN/END SSH SIGNATURE lines)")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SignatureError("the signature is not valid base64") from None
    if blob[:6] != MAGIC or blob[6:10] != struct.pack(">I", 1):
        raise SignatureError("not an SSHSIG version 1 signature")
    (public, namespace, _reserved, hash_alg, signature), _ = _read_strings(blob[10:], 5)
    if namespace.decode(errors="replace") != NAMESPACE or hash_alg != HASH.encode():
        raise SignatureError(f"signed for namespace {namespace.decode(errors='replace')!r} with {hash_alg!r}, "
                             f"not {NAMESPACE!r} with {HASH}")
    (key_type, key_bytes), _ = _read_strings(public, 2)
    (sig_type, sig_bytes), _ = _read_strings(signature, 2)
    if key_type != b"ssh-ed25519" or sig_type != b"ssh-ed25519":
        raise SignatureError("only ssh-ed25519 signatures are accepted")
    try:
        Ed25519PublicKey.from_public_bytes(key_bytes).verify(sig_bytes, _signed_data(message))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match SHA256SUMS: the file or the signature was altered") from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(public).digest()).decode().rstrip("=")


def key_path(config: dict, config_path: Path) -> tuple[Path | None, str]:
    """The signing key's path and where it was named, or (None, "") when no key is configured."""
    named = os.environ.get(KEY_ENV) or (config.get("groundwork") or {}).get("signing_key")
    if not named:
        return None, ""
    where = KEY_ENV if os.environ.get(KEY_ENV) else f"{config_path}: groundwork.signing_key"
    return (config_path.parent / Path(named).expanduser()).resolve(), where


def load_signing_key(config: dict, config_path: Path) -> SigningKey | None:
    """The operator's signing key, or None when none is configured (the run is then "unsigned"). A key that is
    named but missing, readable by others, encrypted or not Ed25519 stops the run before any host is contacted."""
    path, where = key_path(config, config_path)
    if path is None:
        return None

    def refuse(message: str) -> InventoryError:
        return InventoryError([Problem(where, "", "signing_key", message)])
    if not path.is_file():
        raise refuse(f"{path} does not exist (make one: ssh-keygen -t ed25519 -N '' -f {path})")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise refuse(f"{path} has mode {mode:o}; it must be readable by its owner only: chmod 600 {path}")
    try:
        private = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise refuse(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise refuse(f"{path} is not an unencrypted OpenSSH private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise refuse(f"{path} is not an Ed25519 key (make one: ssh-keygen -t ed25519 -N '' -f FILE)")
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    return SigningKey(private, public)
