"""The one source of secrets: environment variables, or a secrets file outside git with mode 0600.

| secret | environment variable | key in the secrets file |
|---|---|---|
| SSH (and sudo) password | GROUNDWORK_SSH_PASSWORD | ssh_password |
| registry admin password | GROUNDWORK_REGISTRY_PASSWORD | registry_password |
| keepalived's VRRP password (proxy hosts) | GROUNDWORK_VRRP_PASSWORD | vrrp_password |
| the passphrase of backup archives (backup, restore) | GROUNDWORK_BACKUP_PASSPHRASE | backup_passphrase |

The environment wins over the file. The file is named by GROUNDWORK_SECRETS_FILE, else by `secrets_file` under
`groundwork:` in config.yaml. Every value found is masked in all output.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from groundwork.inventory import InventoryError, Problem

ENV = {"ssh_password": "GROUNDWORK_SSH_PASSWORD", "registry_password": "GROUNDWORK_REGISTRY_PASSWORD",
       "vrrp_password": "GROUNDWORK_VRRP_PASSWORD", "backup_passphrase": "GROUNDWORK_BACKUP_PASSPHRASE"}
FILE_ENV = "GROUNDWORK_SECRETS_FILE"
# VRRP's simple password is 8 bytes on the wire (keepalived cuts a longer one, so two hosts given passwords that
# differ after the 8th character would still agree); keepalived.conf reads it as one word.
VRRP_PASSWORD = re.compile(r"[A-Za-z0-9._+=-]{4,8}")
# Every value is masked wherever it appears: a shorter one would blank those characters in every log and report.
SHORTEST = 4
# The one secret guarding an archive that holds the CA key, wherever the archive is copied to.
SHORTEST_PASSPHRASE = 12


def load_secrets(config: dict, config_path: Path) -> dict[str, str]:
    """The secrets that are set; a secrets file that is unreadable, too open or malformed is an error."""
    found: dict[str, str] = {}
    named = os.environ.get(FILE_ENV) or ((config.get("groundwork") or {}).get("secrets_file"))
    if named:
        path = (config_path.parent / Path(named).expanduser()).resolve()
        where = f"{FILE_ENV}" if os.environ.get(FILE_ENV) else f"{config_path}: groundwork.secrets_file"
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise InventoryError([Problem(str(path), "", "", f"secrets file has mode {mode:o}; it must be "
                                              f"readable by its owner only: chmod 600 {path}")])
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise InventoryError([Problem(str(path), "", "", f"cannot read the secrets file: "
                                              f"{type(exc).__name__}")]) from None
            if not isinstance(data, dict) or any(k not in ENV for k in data):
                raise InventoryError([Problem(str(path), "", "", f"the secrets file must be a mapping of "
                                              f"{', '.join(ENV)}")])
            found.update({k: str(v) for k, v in data.items() if v})
        elif os.environ.get(FILE_ENV):
            raise InventoryError([Problem(where, "", "", f"secrets file {path} does not exist")])
    found.update({k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)})
    def where(name: str) -> str:
        return ENV[name] if os.environ.get(ENV[name]) else "the secrets file"
    problems = [Problem("secrets", "", name, f"from {where(name)}: shorter than {SHORTEST} characters (masked "
                        "wherever it appears, it would blank those characters in every log and report); its value "
                        "is not shown") for name, value in found.items() if len(value) < SHORTEST]
    problems += [Problem("secrets", "", name, f"from {where(name)}: holds a line break or NUL, which no password "
                         "prompt, HTTP credential or configuration file carries; its value is not shown")
                 for name, value in found.items() if any(c in value for c in "\r\n\0")]
    if not problems and "vrrp_password" in found and not VRRP_PASSWORD.fullmatch(found["vrrp_password"]):
        problems.append(Problem("secrets", "", "vrrp_password", f"from {where('vrrp_password')}: must be 4 to 8 "
                                "letters, digits or . _ + = - (VRRP carries 8 bytes of it; keepalived would cut a "
                                "longer one); its value is not shown"))
    if not problems and 0 < len(found.get("backup_passphrase", "x" * SHORTEST_PASSPHRASE)) < SHORTEST_PASSPHRASE:
        problems.append(Problem("secrets", "", "backup_passphrase", f"from {where('backup_passphrase')}: shorter "
                                f"than {SHORTEST_PASSPHRASE} characters, too weak for an archive that holds the CA "
                                "key; its value is not shown"))
    if problems:
        raise InventoryError(problems)
    return found


def require(secrets: dict[str, str], names: set[str], why: str) -> None:
    missing = sorted(n for n in names if not secrets.get(n))
    if missing:
        raise InventoryError([Problem("secrets", "", n, f"missing, needed by {why}: set {ENV[n]} or `{n}` in the "
                                      f"secrets file ({FILE_ENV} or groundwork.secrets_file in config.yaml)")
                              for n in missing])
