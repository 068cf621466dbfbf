"""The secret source: environment over a 0600 file; a missing secret stops the run before any connection."""

import pytest

from groundwork.inventory import InventoryError
from groundwork.secrets import load_secrets, require
from tests.conftest import copy_seed_inventory, run_runbook


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("GROUNDWORK_SSH_PASSWORD", "GROUNDWORK_REGISTRY_PASSWORD", "GROUNDWORK_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_file_then_environment(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("registry_password: from-file\nssh_password: ssh-from-file\n")
    secrets.chmod(0o600)
    config = {"groundwork": {"secrets_file": str(secrets)}}
    assert load_secrets(config, tmp_path / "config.yaml") == {"registry_password": "from-file",
                                                              "ssh_password": "ssh-from-file"}
    monkeypatch.setenv("GROUNDWORK_REGISTRY_PASSWORD", "from-env")
    assert load_secrets(config, tmp_path / "config.yaml")["registry_password"] == "from-env"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660, 0o610])
def test_a_file_its_group_or_others_can_reach_is_refused(tmp_path, mode):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("registry_password: x\n")
    secrets.chmod(mode)
    with pytest.raises(InventoryError) as caught:
        load_secrets({"groundwork": {"secrets_file": str(secrets)}}, tmp_path / "config.yaml")
    assert f"mode {mode:o}" in str(caught.value.problems[0]) and "chmod 600" in str(caught.value.problems[0])


def test_missing_secret_names_both_ways_to_give_it():
    with pytest.raises(InventoryError) as caught:
        require({}, {"registry_password"}, "the full runbook")
    text = str(caught.value.problems[0])
    assert "registry_password: missing, needed by the full runbook" in text
    assert "GROUNDWORK_REGISTRY_PASSWORD" in text


def test_runbook_without_the_registry_password_exits_3_before_connecting(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDWORK_SECRETS_FILE", str(tmp_path / "absent.yaml"))
    done = run_runbook("-i", str(copy_seed_inventory(tmp_path)), "--reports", str(tmp_path / "reports"))
    assert done.returncode == 3
    assert "absent.yaml does not exist" in done.stderr
    (tmp_path / "absent.yaml").write_text("ssh_password: only-this\n")
    (tmp_path / "absent.yaml").chmod(0o600)
    done = run_runbook("-i", str(copy_seed_inventory(tmp_path / "b")), "--reports", str(tmp_path / "reports"))
    assert done.returncode == 3 and "registry_password: missing" in done.stderr
    assert "only-this" not in done.stdout + done.stderr


@pytest.mark.parametrize("name, value, why", [
    ("vrrp_password", "a", "shorter than 4 characters"),
    ("registry_password", "pw", "shorter than 4 characters"),
    ("registry_password", 'pass"\n-o /etc/passwd', "holds a line break or NUL"),
    ("ssh_password", "pass\rword", "holds a line break or NUL"),
    ("backup_passphrase", "eleven char", "shorter than 12 characters, too weak for an archive that holds the CA key"),
])
def test_a_secret_too_short_to_mask_or_with_a_line_break_is_refused(monkeypatch, tmp_path, name, value, why):
    monkeypatch.setenv({"vrrp_password": "GROUNDWORK_VRRP_PASSWORD", "registry_password": "GROUNDWORK_REGISTRY_PASSWORD",
                        "ssh_password": "GROUNDWORK_SSH_PASSWORD",
                        "backup_passphrase": "GROUNDWORK_BACKUP_PASSPHRASE"}[name], value)
    with pytest.raises(InventoryError) as caught:
        load_secrets({}, tmp_path / "config.yaml")
    text = " ".join(str(p) for p in caught.value.problems)
    assert f"{name}: from GROUNDWORK_" in text and why in text
    assert len(value) < 4 or value not in text


def test_the_checks_quote_the_registry_password_for_curl():
    """A `"` in the password stays inside curl's quoted value: no option is added, the check does not break."""
    from types import SimpleNamespace

    from groundwork.checks import test_registry
    from groundwork.verify import declared_looks, module_checks

    host = SimpleNamespace(name="hdss7-200", groups=("ops",))
    registry = SimpleNamespace(name="harbor.od.com", project="public")
    session = SimpleNamespace(inventory=SimpleNamespace(defaults=SimpleNamespace(registry=registry),
                                                        ops_host=host),
                              secrets={"registry_password": 'a"b\\c -o /tmp/x'}, meta=SimpleNamespace(run_id="r1"),
                              targets=[host])
    looks = [look for check in module_checks(test_registry) for look in declared_looks(check, host, session)]
    configs = [look.stdin for look in looks if b"user =" in look.stdin]
    assert configs and all(c == b'user = "admin:a\\"b\\\\c -o /tmp/x"\n' for c in configs)
