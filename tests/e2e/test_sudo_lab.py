"""A sudo user's password reaches sudo only, and only when sudo asks for it (README: Secrets).

Two lab users: gwadmin (NOPASSWD sudo) run with a password set anyway, as with a password SSH login, and
gwsudo, whose sudo asks for its password (a space and shell characters in it). Each run rewrites a hand-edited
/etc/resolv.conf on a compute host and the registry's htpasswd file on the ops host (whose input is the
registry password on stdin), then verifies, docker login included. The password must be in no file on either
host, in no run folder file and in no output.
"""

import secrets

import pytest

from lab import lab as lab_module
from tests.e2e.conftest import inventory_copy

HOSTS = ("hdss7-21", "hdss7-200")


def as_user(user: str):
    return lambda name, data: data.update(username=user) if name == "defaults.yaml" else None


@pytest.mark.parametrize("user", [lab_module.SUDO_USER, lab_module.PASSWORD_SUDO_USER])
def test_the_sudo_password_never_reaches_a_file_a_command_or_a_report(converged, runbook, tmp_path, user):
    lab = converged
    password = lab_module.sudo_password() if user == lab_module.PASSWORD_SUDO_USER \
        else f"gw-unused {secrets.token_hex(8)} $'\";"
    lab.ssh("hdss7-21", "echo 'nameserver 192.0.2.1' > /etc/resolv.conf")
    lab.ssh("hdss7-200", "rm /etc/docker/registry/htpasswd")
    result = runbook("-i", inventory_copy(tmp_path, as_user(user)), *[a for h in HOSTS for a in ("--host", h)],
                     env={"GROUNDWORK_SSH_PASSWORD": password})
    assert result.rc == 0, result  # the verification pass logged in to the registry with its own password
    assert "nameserver 10.4.7.11" in lab.ssh("hdss7-21", "cat /etc/resolv.conf")
    for host in HOSTS:
        assert lab.files_containing(host, password) == [], f"{host} has the password in a file"
    folder_text = "".join(p.read_text(errors="replace") for p in result.reports.rglob("*") if p.is_file())
    assert password not in folder_text + result.stdout + result.stderr
    # sudo ran the commands as root for this user: its own journal says so.
    assert f"{user} : " in lab.ssh("hdss7-21", f"journalctl -q _COMM=sudo | grep {user} | tail -n 1")


def test_a_wrong_sudo_password_fails_the_host_with_what_sudo_said(converged, runbook, tmp_path):
    result = runbook("-i", inventory_copy(tmp_path, as_user(lab_module.PASSWORD_SUDO_USER)), "--host", "hdss7-21",
                     "--no-verify", env={"GROUNDWORK_SSH_PASSWORD": "not the password"})
    assert result.rc == 4, result
    assert "sudo failed (exit 1): sudo refused the password of gwsudo (GROUNDWORK_SSH_PASSWORD)" in result.stdout
    assert "not the password" not in result.stdout
