"""A backup archive: what groundwork cannot rebuild, in one file that only the passphrase opens.

The members (host, path, kind, mode, owner, group, content) go into a tar held in memory, with MANIFEST.json
listing each member's size and SHA-256; the tar is encrypted whole in the age format with a passphrase (pyrage:
scrypt and ChaCha20-Poly1305, authenticated, so a wrong passphrase or a changed byte is refused; and
`age -d` opens it where groundwork is not installed). Nothing is ever written unencrypted: the CA key in it
lives only in this process's memory, and the file appears under its name only once complete (atomic rename).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

FORMAT = "groundwork-backup/1"
MANIFEST = "MANIFEST.json"
KINDS = ("ca", "zone", "htpasswd", "etcd-snapshot", "config")  # what restore puts back: all but "config"


class ArchiveError(Exception):
    """The archive cannot be used; nothing was written anywhere."""


@dataclass(frozen=True)
class Member:
    host: str
    path: str  # absolute, on the host
    kind: str  # one of KINDS
    mode: str  # octal, like "600"
    owner: str
    group: str
    content: bytes

    @property
    def name(self) -> str:
        """Its name inside the tar: hosts/HOST/PATH."""
        return f"hosts/{self.host}{self.path}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def listing(self) -> dict:
        entry = {k: v for k, v in asdict(self).items() if k != "content"}
        return {**entry, "name": self.name, "size": len(self.content), "sha256": self.sha256}


def seal(members: list[Member], passphrase: str, about: dict) -> bytes:
    """The encrypted archive. about: what the manifest says of the backup (run, time, CA fingerprint)."""
    for m in members:
        _check_member(m.host, m.path, m.kind)
    manifest = json.dumps({"format": FORMAT, **about, "members": [m.listing() for m in members]}, indent=1)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, data in [(MANIFEST, manifest.encode()), *((m.name, m.content) for m in members)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, 0
            tar.addfile(info, io.BytesIO(data))
    import pyrage  # loaded only by backup and restore

    return pyrage.passphrase.encrypt(tar_bytes.getvalue(), passphrase)


def unseal(data: bytes, passphrase: str) -> tuple[dict, list[Member]]:
    """(manifest, members) from an archive, every member checked against the manifest; ArchiveError else."""
    import pyrage

    try:
        plain = pyrage.passphrase.decrypt(data, passphrase)
    except pyrage.DecryptError:
        raise ArchiveError("cannot be decrypted with backup_passphrase: a wrong passphrase, or the file was "
                           "altered or cut short") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(plain), mode="r") as tar:
            files = {i.name: tar.extractfile(i).read() for i in tar.getmembers() if i.isfile()}
        manifest = json.loads(files.pop(MANIFEST))
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise ArchiveError(f"not a groundwork backup ({type(exc).__name__})") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"format {manifest.get('format')!r}, not {FORMAT}")
    members = []
    for entry in manifest.get("members") or []:
        _check_member(entry["host"], entry["path"], entry["kind"])
        content = files.pop(entry["name"], None)
        if content is None or hashlib.sha256(content).hexdigest() != entry["sha256"]:
            raise ArchiveError(f"{entry['name']} is missing or differs from its SHA-256 in the manifest")
        members.append(Member(entry["host"], entry["path"], entry["kind"], entry["mode"], entry["owner"],
                              entry["group"], content))
    if files:
        raise ArchiveError(f"holds files its manifest does not list: {', '.join(sorted(files))}")
    return manifest, members


def _check_member(host: str, path: str, kind: str) -> None:
    if kind not in KINDS or not path.startswith("/") or posixpath.normpath(path) != path or "/" in host or not host:
        raise ArchiveError(f"member {host}:{path} ({kind}): not an absolute, normal path of a host")


def write_new(path: Path, data: bytes) -> None:
    """Write data as a new file, 0600 from its creation, under its name only once complete."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.partial")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(temp, path)  # never over an existing archive
    finally:
        temp.unlink(missing_ok=True)
