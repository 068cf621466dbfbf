"""Who ran what, when, with which code: a run's metadata as the report's Environment table and run.json give it."""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata as pkg_metadata
from pathlib import Path

import groundwork


TOOLS = ("groundwork", "nornir", "nornir-netmiko", "netmiko", "paramiko", "cryptography", "dnspython", "jinja2",
         "pytest", "pytest-html")


@dataclass
class RunMetadata:
    run_id: str
    runbook: str
    change_id: str
    operator: str
    started: str
    ended: str | None
    git_commit: str
    git_dirty: bool
    inventory_digest: str
    groups: list[str]
    hosts: list[str]
    dry_run: bool
    tools: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # each targeted host's address
    signer: str = "unsigned"  # the signing key's fingerprint, or "unsigned" without a key
    # --approved-plan: {"plan", "plan_digest", "change_id", "by", "at"}; empty when not an approved apply
    approval: dict[str, str] = field(default_factory=dict)

    def as_table(self) -> dict[str, str]:
        """For the report's Environment table, in the order a reviewer reads it."""
        table = {"Run": self.run_id, "Runbook": self.runbook, "Change id": self.change_id or "(none given)",
                 "Operator": self.operator, "Started (UTC)": self.started, "Ended (UTC)": self.ended or "",
                 "Git commit": self.git_commit + (" (tree dirty)" if self.git_dirty else ""),
                 "Inventory digest": self.inventory_digest,
                 "Targeted groups": ", ".join(self.groups) or "all",
                 "Targeted hosts": ", ".join(self.hosts), "Dry run": "yes" if self.dry_run else "no",
                 "Signed by": self.signer}
        if self.approval:
            table.update({"Approved plan": f"{self.approval['plan']} (digest {self.approval['plan_digest'][:16]})",
                          "Approved by": self.approval["by"] or "(not given)", "Approved at": self.approval["at"]})
        table.update({f"version {name}": version for name, version in self.tools.items()})
        return table


def git_state(project: Path) -> tuple[str, bool]:
    """The commit of the operator's project folder (config and inventory under change control), if it is one."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "groundwork": groundwork.__version__}
    for name in TOOLS[1:]:
        try:
            versions[name] = pkg_metadata.version(name)
        except pkg_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def operator_name() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()
