import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from groundwork.remote import Remote
from groundwork.signing import load_signing_key

PROJECT = Path(__file__).resolve().parents[1]
E2E = PROJECT / "tests" / "e2e"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is a lab test: `-m "not lab"` must never bring the lab up (as root its
    fixture recreates the hosts). A `pytestmark` in a conftest marks nothing, so the marker is added here."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.lab)
    # Tests that bring up the lab for another inventory run after every test that expects the default lab.
    items.sort(key=lambda item: item.get_closest_marker("replaces_lab") is not None)


class LocalRemote(Remote):
    """The real remote layer with its transport swapped for a local shell: the scripts it builds run for real.
    `executed` keeps every command line as the shell got it, before any masking."""

    @property
    def executed(self) -> list[str]:
        return self.__dict__.setdefault("_executed", [])

    def _exec(self, command: str, stdin: bytes, timeout: float, handshake=None) -> tuple[int, bytes, bytes]:
        self.executed.append(command)
        done = subprocess.run(command, shell=True, input=stdin, capture_output=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def local_remote(tmp_path):
    return LocalRemote(transport_factory=lambda: None, backup_dir=str(tmp_path / "backups"))


def run_runbook(*args: str, name: str = "full", timeout: float = 600,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a runbook as an operator would, in a child process; env: variables set on top of ours."""
    return subprocess.run([sys.executable, str(PROJECT / "runbooks" / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=PROJECT,
                          env={**os.environ, **env} if env else None)


def copy_seed_inventory(dest: Path) -> Path:
    """The project's inventory copied to dest/inventory, its SSH key and known_hosts pointed at empty files of
    its own, so that tests of the model need no lab."""
    folder = dest / "inventory"
    shutil.copytree(PROJECT / "inventory", folder)
    for name in ("key", "known_hosts"):
        (dest / name).write_text("")
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["connection_options"]["netmiko"]["extras"].update(key_file=str(dest / "key"),
                                                               alt_key_file=str(dest / "known_hosts"))
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    return folder


def make_signing_key(folder: Path):
    """An operator's run-signing key, made as README says (ssh-keygen -t ed25519 -N ''), loaded."""
    path = folder / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", str(path)], check=True)
    return load_signing_key({"groundwork": {"signing_key": str(path)}}, folder / "config.yaml")


@pytest.fixture
def signing_key(tmp_path):
    return make_signing_key(tmp_path)
