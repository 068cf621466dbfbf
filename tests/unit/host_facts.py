"""Facts as a gather hands them to a decision, for tests that give a decision a host in a known state."""

import hashlib

from groundwork.facts import FileInfo, OsInfo

DEBIAN = OsInfo("debian", (), "12", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64")
CENTOS = OsInfo("centos", ("rhel", "fedora"), "7", "CentOS Linux 7 (Core)", "3.10.0-1160.el7.x86_64")


def on_host(content: bytes, mode: str = "644", owner: str = "root", group: str = "root") -> FileInfo:
    """A file on the host with this content, read by the gather (as it is when its digest is not the wanted one)."""
    return FileInfo(hashlib.sha256(content).hexdigest(), mode, owner, group, content=content)
