import subprocess
import sys
from pathlib import Path

import pytest

from groundwork.remote import Remote

PROJECT = Path(__file__).resolve().parents[1]


class LocalRemote(Remote):
    """The real remote layer with its transport swapped for a local shell: the scripts it builds run for real."""

    def _exec(self, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        done = subprocess.run(command, shell=True, input=stdin, capture_output=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def local_remote(tmp_path):
    return LocalRemote(transport_factory=lambda: None, backup_dir=str(tmp_path / "backups"))


def run_runbook(*args: str, name: str = "full", timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a runbook as an operator would, in a child process."""
    return subprocess.run([sys.executable, str(PROJECT / "runbooks" / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=PROJECT)
