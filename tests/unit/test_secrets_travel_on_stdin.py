"""A secret reaches the program that needs it on stdin, never on a command line (where `ps` shows it to every
user of the host): each stage step that hands one over, run for real through a local shell, its command lines
compared as the shell got them, before any masking."""

import dataclasses
import grp
import os
import subprocess

from groundwork.tasks import registry
from groundwork.tasks.registry import _htpasswd_change

PASSWORD = "s3cret pw with 'quotes' and $(id)"


def test_the_registry_password_reaches_htpasswd_on_stdin_and_the_file_verifies(local_remote, tmp_path):
    layout = dataclasses.replace(registry.REGISTRY["debian"], htpasswd=str(tmp_path / "htpasswd"),
                                 group=grp.getgrgid(os.getgid()).gr_name)
    _htpasswd_change(layout, PASSWORD, exists=False).action(local_remote)
    assert local_remote.executed and not any("s3cret" in command for command in local_remote.executed)
    verified = subprocess.run(["htpasswd", "-v", "-i", str(tmp_path / "htpasswd"), "admin"],
                              input=PASSWORD, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
