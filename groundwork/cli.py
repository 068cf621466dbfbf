"""The command line every runbook shares.

Exit codes (documented in the README):
  0  every targeted host ended well (in a dry run: the plan was computed)
  1  an unexpected error in groundwork itself
  2  bad command line: unknown option, host or group
  3  invalid inventory or configuration; no host was contacted
  4  one or more hosts failed a stage; the others finished
  130 interrupted (Ctrl-C); the run record says what was done
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

import yaml

from groundwork.inventory import KNOWN_GROUPS, InventoryError, Problem, load_inventory
from groundwork.remote import Masker
from groundwork.runner import Progress, RunRecord, new_run_id, order_hosts, run_stages
from groundwork.stages import RunContext, Stage

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVENTORY, EXIT_HOST_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
PROJECT = Path(__file__).resolve().parents[1]
PASSWORD_ENV = "GROUNDWORK_SSH_PASSWORD"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                epilog="exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid inventory, "
                                       "4 a host failed, 130 interrupted")
    p.add_argument("-c", "--config", type=Path, default=PROJECT / "config.yaml",
                   help="Nornir config file (default: config.yaml of the project)")
    p.add_argument("-i", "--inventory", type=Path,
                   help="inventory folder with hosts.yaml, groups.yaml, defaults.yaml (default: from the config)")
    p.add_argument("-g", "--group", action="append", default=[], metavar="GROUP",
                   help=f"only hosts of this group ({', '.join(KNOWN_GROUPS)}); repeatable")
    p.add_argument("-H", "--host", action="append", default=[], metavar="HOST",
                   help="only this host; repeatable; combines with --group as a union")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--diff", action="store_true", help="show the diff of every change (always on in a dry run)")
    p.add_argument("-w", "--workers", type=int, help="hosts worked on at once (default: from the config)")
    p.add_argument("--reports", type=Path, default=PROJECT / "reports", help="where run folders are written")
    return p


def _load_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError([Problem(str(path), "", "", f"cannot read the config: {exc}")]) from exc
    if not isinstance(config, dict):
        raise InventoryError([Problem(str(path), "", "", "must be a mapping")])
    return config


def _inventory_paths(config: dict, config_path: Path, override: Path | None) -> dict[str, Path]:
    """The three inventory files: from --inventory, else from the config, relative to the config file."""
    defaults = {"host_file": "hosts.yaml", "group_file": "groups.yaml", "defaults_file": "defaults.yaml"}
    if override is not None:
        return {k: override.resolve() / name for k, name in defaults.items()}
    options = (config.get("inventory") or {}).get("options") or {}
    return {k: (config_path.parent / options.get(k, f"inventory/{name}")).resolve() for k, name in defaults.items()}


def main(stages: list[Stage], runbook: str, description: str, argv: list[str] | None = None) -> int:
    args = parser(description).parse_args(argv)
    try:
        return _run(stages, runbook, args)
    except InventoryError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_INVENTORY
    except Exception:  # noqa: BLE001 - a bug in groundwork: say so plainly, with the traceback
        traceback.print_exc()
        print("groundwork: internal error (exit 1); the traceback above is for a bug report", file=sys.stderr)
        return EXIT_INTERNAL


def _run(stages: list[Stage], runbook: str, args: argparse.Namespace) -> int:
    config_path = args.config.resolve()
    config = _load_config(config_path)
    paths = _inventory_paths(config, config_path, args.inventory)
    inventory = load_inventory(paths["host_file"].parent, **{k: str(v) for k, v in paths.items()})

    unknown = [h for h in args.host if h not in inventory.hosts] + [g for g in args.group if g not in KNOWN_GROUPS]
    if unknown:
        print(f"unknown host or group: {', '.join(unknown)} (hosts: {', '.join(inventory.hosts)}; "
              f"groups: {', '.join(KNOWN_GROUPS)})", file=sys.stderr)
        return EXIT_USAGE
    targets = [h for h in inventory.hosts.values()
               if (not args.host and not args.group) or h.name in args.host or any(g in h.groups for g in args.group)]
    if not targets:
        print(f"no host is in group(s) {', '.join(args.group)}", file=sys.stderr)
        return EXIT_USAGE
    targets = order_hosts(targets)

    masker = Masker([os.environ.get(PASSWORD_ENV, "")])
    nr = _nornir(config, paths, args.workers)
    if os.environ.get(PASSWORD_ENV):
        nr.inventory.defaults.password = os.environ[PASSWORD_ENV]

    args.reports.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_id=new_run_id(runbook, args.reports), runbook=runbook, dry_run=args.dry_run,
                       targets=[h.name for h in targets], started=_now())
    progress = Progress(record, show_diff=args.diff)
    progress.say(f"groundwork {runbook}: run {record.run_id}, {len(targets)} host(s)"
                 + (", DRY RUN: nothing will be changed" if args.dry_run else ""))
    ctx = RunContext(inventory=inventory, dry_run=args.dry_run, masker=masker)
    try:
        run_stages(nr, stages, ctx, targets, record, progress)
    except KeyboardInterrupt:
        record.interrupted = True
        progress.say("\ninterrupted: stopping; hosts already finished are recorded below")
    finally:
        nr.close_connections()
        record.ended = _now()
        path = record.write(args.reports)
    progress.recap()
    progress.say(f"run record: {path}")
    if record.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_HOST_FAILED if record.failed_hosts else EXIT_OK


def _nornir(config: dict, paths: dict[str, Path], workers: int | None):
    from nornir import InitNornir

    runner = dict(config.get("runner") or {"plugin": "threaded"})
    if workers:
        runner["options"] = {**(runner.get("options") or {}), "num_workers": workers}
    return InitNornir(runner=runner,
                      inventory={"plugin": "SimpleInventory", "options": {k: str(v) for k, v in paths.items()}},
                      logging=config.get("logging") or {"enabled": False})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
