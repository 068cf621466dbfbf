"""The command line every runbook shares.

Exit codes (documented in the README):
  0  every targeted host ended well and every check passed (in a dry run: the plan was written)
  1  an unexpected error in groundwork itself
  2  bad command line: unknown option, host or group; no such approved plan or earlier run
  3  invalid inventory or configuration; no host was contacted
  4  one or more hosts failed a stage; the others finished
  5  the verification pass found a check failing, or verified nothing on a host (all its checks skipped)
  6  --approved-plan refused: the plan computed now (checked again for each host's stage right before it is
      applied) differs from the approved one, or the approved plan's folder was altered; nothing was changed
      on the hosts refused
  7  another run is working on the same inventory, or on one of the targeted hosts (from any controller); nothing
      was done
  130 interrupted (Ctrl-C, SIGTERM or SIGHUP); the stage under way finished on its hosts, no later stage
      started, and the run record says which stages ran and which did not (a second signal does not cut that
      stage short)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from groundwork.hostlock import HostsLocked
from groundwork.inventory import KNOWN_GROUPS, HostModel, Inventory, InventoryError, Problem, load_inventory
from groundwork.approval import PlanError, PlanRejected, load_plan
from groundwork.context import Renewal, RunContext
from groundwork.runlock import LockedError
from groundwork.record import RunRecord, utc_now
from groundwork.runner import order_hosts
from groundwork.secrets import load_secrets, require
from groundwork.signing import load_signing_key
from groundwork.session import RunSession
from groundwork.stages import Stage

(EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVENTORY, EXIT_HOST_FAILED, EXIT_VERIFY_FAILED,
 EXIT_PLAN_REFUSED, EXIT_LOCKED, EXIT_INTERRUPTED) = 0, 1, 2, 3, 4, 5, 6, 7, 130
# A run's outcome (run.json, the index) -> its exit code; ok, changed and planned exit 0.
EXIT_FOR_OUTCOME = {"refused": EXIT_PLAN_REFUSED, "interrupted": EXIT_INTERRUPTED, "failed": EXIT_HOST_FAILED,
                    "verification-failed": EXIT_VERIFY_FAILED, "unverified": EXIT_VERIFY_FAILED}
CONFIG_ENV = "GROUNDWORK_CONFIG"


def default_config() -> Path:
    """The operator's project, never the install location: $GROUNDWORK_CONFIG, else ./config.yaml."""
    return Path(os.environ.get(CONFIG_ENV) or "config.yaml")


class UsageError(Exception):
    pass


def parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description,
                                epilog="exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid inventory, "
                                       "4 a host failed, 5 verification failed or incomplete, 6 plan refused, "
                                       "7 another run holds the inventory, 130 interrupted")
    p.add_argument("-c", "--config", type=Path, default=default_config(), metavar="FILE",
                   help=f"the project's config file (default: ${CONFIG_ENV}, else config.yaml in the working "
                        "directory); inventory and reports are found beside it")
    p.add_argument("-i", "--inventory", type=Path, metavar="DIR",
                   help="inventory folder with hosts.yaml, groups.yaml, defaults.yaml (default: from the config)")
    p.add_argument("-g", "--group", action="append", default=[], metavar="GROUP",
                   help=f"only hosts of this group ({', '.join(KNOWN_GROUPS)}); repeatable")
    p.add_argument("-H", "--host", action="append", default=[], metavar="HOST",
                   help="only this host; repeatable; combines with --group as a union")
    p.add_argument("--rerun-failed", action="store_true",
                   help="only the hosts that failed (a stage or a check) in the last run")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="show what would change, change nothing; writes the plan for --approved-plan")
    p.add_argument("--approved-plan", metavar="RUN_ID",
                   help="apply only if the plan computed now is the one of that dry run, on its hosts")
    p.add_argument("--approved-by", metavar="NAME",
                   help="who approved the plan (with --approved-plan); recorded in the run record, report and index")
    p.add_argument("--approved-at", metavar="TIME",
                   help="when it was approved, ISO 8601 like 2026-12-02T09:30Z (default: now, as it is recorded)")
    p.add_argument("--diff", action="store_true", help="show the diff of every change (always on in a dry run)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show each stage's Nornir results per host (nornir-utils' print_result): every change "
                        "with its diff, and every command run with its exit status")
    p.add_argument("--no-verify", action="store_true", help="skip the verification pass")
    p.add_argument("--change-id", default="", metavar="ID",
                   help="the change ticket this run belongs to, shown in the report")
    p.add_argument("-w", "--workers", type=int, metavar="N", help="hosts worked on at once (default: from the config)")
    p.add_argument("--order", choices=("pipeline", "graph"), default="pipeline",
                   help="pipeline: each stage on every host before the next starts (the default); graph: each "
                        "stage on a host as soon as the stages it needs have ended on every host")
    p.add_argument("--reports", type=Path, metavar="DIR",
                   help="where run folders are written (default: reports/ beside the config file)")
    return p


def main(stages: list[Stage] | Callable[[argparse.Namespace], list[Stage]],
         runbook: str | Callable[[argparse.Namespace], str], description: str,
         argv: list[str] | None = None, all_checks: bool = False,
         add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
         secrets: frozenset[str] = frozenset(), prog: str | None = None,
         extra_checks: Callable[[argparse.Namespace], list[str]] | None = None, show_tables: bool = False,
         renewal: Callable[[argparse.Namespace], Renewal] | None = None,
         check_inventory: Callable[[argparse.Namespace, Inventory], None] | None = None,
         open_inputs: Callable[[argparse.Namespace, Inventory, dict[str, str]], None] | None = None,
         conclude: Callable[[argparse.Namespace, RunContext, RunRecord], list[str]] | None = None) -> int:
    """Run a runbook: its stages in order, then the verification pass.

    The pass runs the checks of the stages run (checks/test_<stage>.py), or with all_checks every check.
    A runbook with arguments of its own adds them with add_arguments and builds its stages (and may name
    itself) from them.
    secrets: what its checks need beyond its stages' own (verify.py runs every stage's checks).
    extra_checks: check modules it runs beyond its stages' (the certificates of the whole platform);
    show_tables: print the tables its checks show (groundwork certs).
    renewal: which certificates its stages issue again though current (groundwork certs renew).
    check_inventory: refuses arguments the inventory cannot satisfy (UsageError), before any host is contacted.
    open_inputs: reads what the run is given besides the inventory (a backup archive, opened with a secret),
    before any host is contacted; InventoryError when it cannot be used.
    conclude: what the run makes on the controller once its stages ran (not in a dry run): lines for the record.
    """
    p = parser(description, prog)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    args.gw_secrets = secrets
    args.gw_show_tables = show_tables
    args.gw_check_inventory = check_inventory
    args.gw_open_inputs = open_inputs
    args.gw_conclude = conclude
    if callable(stages):
        try:
            stages = stages(args)
        except UsageError as exc:
            print(f"groundwork: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if callable(runbook):
        runbook = runbook(args)
    args.gw_renewal = renewal(args) if renewal else Renewal()
    if args.dry_run and args.approved_plan:
        print("--dry-run and --approved-plan do not go together", file=sys.stderr)
        return EXIT_USAGE
    if (args.approved_by is not None or args.approved_at) and not args.approved_plan:
        print("--approved-by and --approved-at record the approval of a plan: give --approved-plan RUN_ID too",
              file=sys.stderr)
        return EXIT_USAGE
    modules = None if all_checks else sorted({s.check_module for s in stages}
                                             | set(extra_checks(args) if extra_checks else []))
    try:
        return _run(stages, runbook, args, modules)
    except InventoryError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_INVENTORY
    except (UsageError, PlanError) as exc:
        print(f"groundwork: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PlanRejected as exc:
        print(f"groundwork: REFUSED: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_PLAN_REFUSED
    except (LockedError, HostsLocked) as exc:
        print(f"groundwork: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except Exception:  # noqa: BLE001 - a bug in groundwork: say so plainly, with the traceback
        traceback.print_exc()
        print("groundwork: internal error (exit 1); the traceback above is for a bug report", file=sys.stderr)
        return EXIT_INTERNAL


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


def _targets(args: argparse.Namespace, inventory: Inventory, approved: dict | None) -> list[HostModel]:
    if approved is not None:
        if args.host or args.group or args.rerun_failed:
            raise UsageError("--approved-plan applies to the hosts of its plan; leave out --host, --group, "
                             "--rerun-failed")
        missing = [h for h in approved["targets"] if h not in inventory.hosts]
        if missing:
            raise UsageError(f"the approved plan names hosts the inventory no longer has: {', '.join(missing)}")
        return order_hosts([inventory.hosts[h] for h in approved["targets"]])
    unknown = [h for h in args.host if h not in inventory.hosts] + [g for g in args.group if g not in KNOWN_GROUPS]
    if unknown:
        raise UsageError(f"unknown host or group: {', '.join(unknown)} (hosts: {', '.join(inventory.hosts)}; "
                         f"groups: {', '.join(KNOWN_GROUPS)})")
    wanted = set(args.host)
    if args.rerun_failed:
        last, failed = _last_failed_hosts(args.reports)
        wanted |= {h for h in failed if h in inventory.hosts}
        print(f"--rerun-failed: the last run {last} failed on {', '.join(failed) or 'no host'}")
    selected = [h for h in inventory.hosts.values()
                if h.name in wanted or any(g in h.groups for g in args.group)
                or (not wanted and not args.group and not args.rerun_failed)]
    return order_hosts(selected)


def _approval(args: argparse.Namespace, approved: dict) -> dict[str, str]:
    """Who approved the plan and when, for the applying run's record; the change id is the dry run's."""
    planned = approved.get("change_id", "")
    if args.change_id and planned and args.change_id != planned:
        raise UsageError(f"--change-id {args.change_id} is not the change of the approved plan {approved['run_id']} "
                         f"({planned}): the plan was approved for that change")
    args.change_id = args.change_id or planned
    by = (args.approved_by or "").strip()
    if args.approved_by is not None and (not by or len(by) > 200 or any(ord(c) < 32 for c in by)):
        raise UsageError("--approved-by takes a name: one line, 1 to 200 characters")
    at = utc_now()
    if args.approved_at:
        try:
            when = datetime.fromisoformat(args.approved_at)
        except ValueError:
            raise UsageError(f"--approved-at {args.approved_at!r} is not an ISO 8601 time (like 2026-12-02T09:30Z)")
        if when.tzinfo is None:
            raise UsageError(f"--approved-at {args.approved_at!r} has no time zone: add Z for UTC or an offset")
        at = when.astimezone(timezone.utc).isoformat(timespec="seconds")
    return {"plan": approved["run_id"], "plan_digest": approved["digest"], "change_id": planned, "by": by, "at": at}


def _last_failed_hosts(reports: Path) -> tuple[str, list[str]]:
    runs = sorted(reports.glob("*/run.json"), reverse=True)
    if not runs:
        raise UsageError(f"--rerun-failed: no earlier run in {reports}")
    run = json.loads(runs[0].read_text())
    failed = {e["host"] for e in run["entries"] if e["status"] == "failed"}
    failed |= {c["host"] for c in run.get("checks") or [] if c["outcome"] in ("failed", "error")}
    return runs[0].parent.name, [h for h in run["targets"] if h in failed]


def _run(stages: list[Stage], runbook: str, args: argparse.Namespace, check_modules: list[str] | None) -> int:
    config_path = args.config.resolve()
    config = _load_config(config_path)
    args.project = config_path.parent
    args.reports = args.reports or args.project / "reports"
    paths = _inventory_paths(config, config_path, args.inventory)
    inventory = load_inventory(paths["host_file"].parent, **{k: str(v) for k, v in paths.items()})
    for warning in inventory.warnings:
        print(f"groundwork: warning: {paths['host_file']}: {warning}", file=sys.stderr)
    if args.gw_check_inventory:
        args.gw_check_inventory(args, inventory)
    signing_key = load_signing_key(config, config_path)
    # The plan is trusted when the key this run signs with signed its dry run's folder.
    approved = load_plan(args.reports, args.approved_plan, signing_key.fingerprint if signing_key else None) \
        if args.approved_plan else None
    approval = _approval(args, approved) if approved else None
    targets = _targets(args, inventory, approved)
    if not targets:
        print("no host to run on" + (": the last run had no failed host" if args.rerun_failed else ""))
        return EXIT_OK if args.rerun_failed else EXIT_USAGE
    secrets = load_secrets(config, config_path)
    # Only the stages that will run on a targeted host need their secrets (--group ops needs no VRRP password).
    running = [s for s in stages if any(s.applies_to(h, inventory) for h in targets)]
    require(secrets, set(args.gw_secrets).union(*(s.secrets for s in running)), f"the {runbook} runbook")
    if args.gw_open_inputs:
        args.gw_open_inputs(args, inventory, secrets)
    run = RunSession.prepare(runbook=runbook, args=args, stages=stages, check_modules=check_modules,
                             inventory=inventory, inventory_dir=paths["host_file"].parent, targets=targets,
                             secrets=secrets, nr=_nornir(config, args.workers, inventory), approved=approved,
                             approval=approval, signing_key=signing_key)
    return EXIT_FOR_OUTCOME.get(run.run(), EXIT_OK)


def _nornir(config: dict, workers: int | None, inventory: Inventory):
    from nornir import InitNornir

    from groundwork.nornir_inventory import PLUGIN

    runner = dict(config.get("runner") or {"plugin": "threaded"})
    if workers:
        runner["options"] = {**(runner.get("options") or {}), "num_workers": workers}
    return InitNornir(runner=runner, inventory={"plugin": PLUGIN, "options": {"model": inventory}},
                      logging=config.get("logging") or {"enabled": False})
