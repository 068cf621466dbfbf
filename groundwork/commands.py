"""The `groundwork` command: one verb per runbook, each onto cli.main with the same options and exit codes.

    groundwork run [STAGE...]      every stage in pipeline order, or the named ones (still in pipeline order)
    groundwork verify              the verification pass alone
    groundwork audit               check a reports folder's checksums, signatures and hash chain
    groundwork issue-cert NAME     a certificate from the CA on the ops host
    groundwork replace-ca          a new CA (the old one kept aside)
    groundwork etcd-backup         an etcd snapshot kept on the ops host
    groundwork etcd-restore        every member restored from a kept snapshot
    groundwork certs               every certificate groundwork manages: days left, issuer, the CA host's copy
    groundwork certs renew         etcd's and Kubernetes' certificates issued again (due, or --name) and rolled
    groundwork backup              what cannot be rebuilt, in one encrypted archive on this machine
    groundwork restore             an archive's CA, zones, htpasswd and etcd snapshot put back, then every stage
    groundwork remove-host NAME    a host taken out of the inventory taken out of etcd, Kubernetes, DNS and the proxy

`python runbooks/NAME.py` is the same verb (runbook()); its run folders carry the runbook's name either way.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import groundwork
from groundwork import audit_command, cli
from groundwork.pki import PROFILE_USAGES
from groundwork.context import Renewal
from groundwork.backup_archive import ArchiveError, Member, seal, unseal, write_new
from groundwork.inventory import Inventory, InventoryError, Problem
from groundwork.report_html import READINESS
from groundwork.stages import Stage
from groundwork.tasks import (backup, ca, dns, docker, etcd, etcd_backup, host_prep, lb, registry, remove_host,
                              time_sync)
from groundwork.tasks.kubernetes import all_certs
from groundwork.tasks.pipeline import KUBERNETES, PIPELINE

# `groundwork run PART`: the parts a runbook of its own runs, by that runbook's name.
PARTS: dict[str, list[Stage]] = {
    "host_prep": [host_prep.STAGE], "time_sync": time_sync.STAGES, "dns": dns.STAGES, "ca": [ca.STAGE], "docker": [docker.STAGE],
    "registry": [registry.STAGE], "etcd": etcd.STAGES, "lb": lb.STAGES, "kubernetes": KUBERNETES,
}


@dataclass(frozen=True)
class Verb:
    help: str  # one line for `groundwork --help`
    description: str  # the verb's own --help
    runbook: str | Callable[[argparse.Namespace], str]  # the run folder's name, as runbooks/<runbook>.py names it
    stages: list[Stage] | Callable[[argparse.Namespace], list[Stage]] = field(default_factory=list)
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    all_checks: bool = False
    secrets: frozenset[str] = frozenset()
    open_inputs: Callable[[argparse.Namespace, Inventory, dict[str, str]], None] | None = None
    conclude: Callable[..., list[str]] | None = None  # what it writes on the controller after its stages
    extra_checks: Callable[[argparse.Namespace], list[str]] | None = None  # beyond its stages' check modules
    show_tables: bool = False  # print the tables its checks show
    renewal: Callable[[argparse.Namespace], Renewal] | None = None  # certificates issued again though current
    check_inventory: Callable[[argparse.Namespace, Inventory], None] | None = None  # arguments the inventory refuses


# -- run ------------------------------------------------------------------------------------------------------

STAGE_NAMES = list(PARTS) + [s.name for s in PIPELINE if s.name not in PARTS]


def _stage_name(value: str) -> str:
    # a type, not choices=: argparse checks an empty nargs="*" default against choices on Python 3.11
    if value not in STAGE_NAMES:
        raise argparse.ArgumentTypeError(f"{value!r} is not a stage (choose from {', '.join(STAGE_NAMES)})")
    return value


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", nargs="*", type=_stage_name, metavar="STAGE",
                        help=f"run only these (default: every stage): {', '.join(STAGE_NAMES)}")


def _stages_named(args: argparse.Namespace) -> list[Stage]:
    wanted = {id(s) for name in args.stage for s in PARTS.get(name) or [s for s in PIPELINE if s.name == name]}
    return [s for s in PIPELINE if id(s) in wanted] if args.stage else list(PIPELINE)


def _checks_of_run(args: argparse.Namespace) -> list[str]:
    """A run of every stage checks every certificate and kubeadm's preflight too; a run of some stages checks
    what they made."""
    return [] if args.stage else [CERTIFICATES, READINESS]


def _runbook_of_run(args: argparse.Namespace) -> str:
    """`run` alone is the full runbook; `run dns` is the dns runbook's run; anything else is a `run`."""
    parts = set(args.stage)
    return "full" if not parts else args.stage[0] if len(parts) == 1 and args.stage[0] in PARTS else "run"


# -- issue-cert -----------------------------------------------------------------------------------------------

def _file_stem(value: str) -> str:
    """NAME becomes NAME.pem beside the CA: a path of its own (a /, a leading dot) would put it elsewhere."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise argparse.ArgumentTypeError(f"{value!r}: a file name stem of letters, digits and . _ - (no /)")
    if ca.lands_on_ca(value):
        raise argparse.ArgumentTypeError(f"{value!r}: its files would be written over the CA's own "
                                         f"{' and '.join(ca.lands_on_ca(value))}; choose another name")
    return value


def _san(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if not re.fullmatch(rf"(\*\.)?{label}(\.{label})*", value):
        raise argparse.ArgumentTypeError(f"{value!r}: an IP address or a DNS name")
    return value


def _common_name(value: str) -> str:
    if not value or len(value) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise argparse.ArgumentTypeError(f"{value!r}: one line of 1 to 64 characters")
    return value


def _issue_cert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", type=_file_stem, help="file name stem: NAME.pem, NAME-key.pem")
    parser.add_argument("--profile", required=True, choices=sorted(PROFILE_USAGES), help="signing profile")
    parser.add_argument("--cn", type=_common_name, help="common name (default: NAME)")
    parser.add_argument("--san", type=_san, action="append", default=[], help="host name or IP address; repeatable")


# -- certs, certs renew -----------------------------------------------------------------------------------------

CERTIFICATES = "test_certs.py"  # every certificate of the platform: with every stage, and alone (certs)
# What renews a certificate: the stages that issue them (etcd's, Kubernetes'), and those that deliver them and
# restart their consumers, one etcd member and one master at a time.
RENEWING = [*etcd.STAGES, *KUBERNETES]


def _certs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["renew"],
                        help="renew: issue again the certificates due (or named), deliver them, restart their "
                             "consumers one host at a time")
    parser.add_argument("--name", action="append", default=[], metavar="NAME",
                        help="with renew: this certificate (NAME.pem beside the CA, e.g. etcd-peer, client, "
                             "kube-apiserver) even if it is not due; repeatable")
    parser.add_argument("--within", type=int, default=30, metavar="DAYS",
                        help="with renew: every certificate with fewer than DAYS days left (default 30)")


def _certs_stages(args: argparse.Namespace) -> list[Stage]:
    if args.action != "renew" and (args.name or args.within != 30):
        raise cli.UsageError("--name and --within go with `certs renew`")
    if args.within < 0:
        raise cli.UsageError("--within takes a number of days, 0 or more")
    return RENEWING if args.action == "renew" else []


def renewable_names(inventory: Inventory) -> list[str]:
    kubernetes = [c.name for c in all_certs(inventory)] if inventory.defaults.kubernetes.enabled else []
    return [etcd.PEER, etcd.CLIENT, *kubernetes]


def _certs_renew_names(args: argparse.Namespace, inventory: Inventory) -> None:
    unknown = [n for n in args.name if n not in renewable_names(inventory)]
    if unknown:
        raise cli.UsageError(f"--name {', '.join(unknown)}: not a certificate groundwork renews (these are: "
                             f"{', '.join(renewable_names(inventory))}); certificates of issue-cert are renewed "
                             "by removing them and issuing them again")


# -- replace-ca, etcd-restore ---------------------------------------------------------------------------------

def _replace_ca_stages(args: argparse.Namespace) -> list[Stage]:
    if not (args.confirm_replace_ca or args.dry_run):
        raise cli.UsageError("replacing the CA needs --confirm-replace-ca (or look first with --dry-run)")
    return [ca.REPLACE]


def _snapshot_id(value: str) -> str:
    if not etcd_backup.SNAPSHOT_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: a snapshot id as etcd-backup names it "
                                         "(snapshot-YYYYMMDDTHHMMSSZ)")
    return value


def _etcd_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True, type=_snapshot_id, metavar="ID",
                        help="the snapshot to restore (snapshot-YYYYMMDDTHHMMSSZ, from etcd-backup's report)")
    parser.add_argument("--confirm", action="store_true", required=True,
                        help="required: every member's data is replaced by the snapshot's")


# -- backup, restore --------------------------------------------------------------------------------------------

def _backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="where the archive is written (default: backups/ beside the config file)")


def write_archive(args: argparse.Namespace, ctx, record) -> list[str]:
    """The archive, once every targeted host gave its share; none when one failed (a backup with a hole in it
    would be found out only on the day it is needed)."""
    if record.failed_hosts:
        return [f"no archive written: {', '.join(record.failed_hosts)} failed; run the backup again"]
    members: list[Member] = [m for host in record.targets for m in ctx.handoff.get(backup.ARCHIVE, {}).get(host, [])]
    about = {"run_id": record.run_id, "created": record.started, "hosts": record.targets, **backup.about(members)}
    data = seal(members, ctx.secrets["backup_passphrase"], about)
    path = (args.output or args.project / "backups") / f"{record.run_id}.age"
    write_new(path, data)
    return [f"backup archive: {path} ({len(members)} files from {len({m.host for m in members})} hosts, "
            f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}); CA {about['ca_fingerprint']}; "
            "opened with backup_passphrase by `groundwork restore --archive` (or `age -d`)"]


@dataclass
class OpenedArchive:
    """The archive restore was given, decrypted and checked before any host is contacted."""
    members: list[Member] = field(default_factory=list)


def _restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive", type=Path, required=True, metavar="FILE", help="an archive of `groundwork backup`")
    parser.add_argument("--confirm", action="store_true",
                        help="required (unless --dry-run): the CA, zones and htpasswd on the hosts are replaced by "
                             "the archive's where they differ")


def _restore_stages(args: argparse.Namespace) -> list[Stage]:
    if not (args.confirm or args.dry_run):
        raise cli.UsageError("restore needs --confirm (or look first with --dry-run)")
    args.gw_archive = OpenedArchive()
    restore = backup.restore_stage(lambda: args.gw_archive.members)
    if args.dry_run:
        # The pipeline after it is planned on files not yet put back (a CA to be made where one will be
        # restored): the plan is the restore's. Applied, the pipeline may then change only what that plan
        # approved (nothing, on an intact platform); under --approved-plan anything more is refused.
        return [restore]
    args.gw_plan_covers = 1
    return [restore, *PIPELINE]


def open_archive(args: argparse.Namespace, inventory: Inventory, secrets: dict[str, str]) -> None:
    """Decrypt the archive and check every member against its manifest: refused whole, before any host."""
    path = args.archive
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryError([Problem(str(path), "", "", f"cannot read the archive: {exc.strerror}")]) from None
    try:
        manifest, members = unseal(data, secrets["backup_passphrase"])
    except ArchiveError as exc:
        raise InventoryError([Problem(str(path), "", "", f"{exc}; nothing was restored")]) from None
    strangers = sorted({m.host for m in members} - set(inventory.hosts))
    if strangers:
        print(f"groundwork: warning: {path}: hosts not in the inventory are left out: {', '.join(strangers)}",
              file=sys.stderr)
    args.gw_archive.members = [m for m in members if m.host in inventory.hosts]
    print(f"{path}: backup {manifest.get('run_id')} of {manifest.get('created')}, {len(members)} files, CA "
          f"{manifest.get('ca_fingerprint')}, zone serials {manifest.get('zone_serials')}")


# -- remove-host ----------------------------------------------------------------------------------------------

def _host_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: a host name as the inventory had it (letters, digits, -)")
    return value


def _remove_host_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", type=_host_name, metavar="NAME", help="the host, already taken out of the inventory")
    parser.add_argument("--confirm", action="store_true",
                        help="required (unless --dry-run): its etcd membership and Node object are removed")


def _remove_host_stages(args: argparse.Namespace) -> list[Stage]:
    if not (args.confirm or args.dry_run):
        raise cli.UsageError("remove-host needs --confirm (or look first with --dry-run)")
    return [remove_host.member_removal(args.name), remove_host.node_removal(args.name), *PIPELINE]


def _host_left_the_inventory(args: argparse.Namespace, inventory: Inventory) -> None:
    """The inventory and the command agree: the host named is no longer in it."""
    if args.name in inventory.hosts:
        raise cli.UsageError(f"{args.name} is still in the inventory: take it out of hosts.yaml first (and out of "
                             "any group lists), then run remove-host again; the run takes out of the platform what "
                             "the inventory no longer has")


VERBS: dict[str, Verb] = {
    "run": Verb("run every stage in pipeline order, or only the named ones",
                "Run every stage in pipeline order (proxy hosts, then the ops host, then master_compute hosts), "
                "or only the named stages, still in pipeline order; then the verification pass of those stages.",
                _runbook_of_run, _stages_named, _run_arguments, extra_checks=_checks_of_run),
    "verify": Verb("the verification pass alone, with its report",
                   "Run the verification pass alone: every check on every targeted host, and the report for the "
                   "change board.", "verify", all_checks=True,
                   secrets=frozenset().union(*(s.secrets for s in PIPELINE))),
    "issue-cert": Verb("issue a certificate from the CA on the ops host",
                       "Issue a certificate from the CA on the ops host, as `cfssl gencert -profile=PROFILE` does: "
                       "NAME.pem and NAME-key.pem (0600) under /opt/certs. A current certificate with the same CN, "
                       "SANs and profile is kept; one of that name issued with other settings is never written over, "
                       "and no NAME may land on the CA's own files.", "issue_cert",
                       lambda a: [ca.issue_stage(a.name, a.profile, a.cn or a.name, a.san)], _issue_cert_arguments),
    "replace-ca": Verb("replace the certificate authority (needs --confirm-replace-ca)",
                       "Replace the certificate authority on the ops host: the old ca.pem, ca-key.pem and ca.csr move "
                       "to /opt/certs/replaced-<UTC time>/, then a new CA is made. Every certificate the old CA signed "
                       "stops being trusted by anything that trusts only the new one. Needs --confirm-replace-ca (see "
                       "the plan first with --dry-run).", "replace_ca", _replace_ca_stages,
                       lambda p: p.add_argument("--confirm-replace-ca", action="store_true",
                                                help="yes, replace the CA")),
    "etcd-backup": Verb("an etcd snapshot, checked and kept on the ops host",
                        "Back up the etcd cluster: a snapshot from the first healthy member, checked with `snapshot "
                        "status`, kept on the ops host under etcd.backup_dir as snapshot-<UTC time>.db with its "
                        ".sha256 (the newest etcd.backups_kept).", "etcd_backup",
                        [etcd_backup.SAVE, etcd_backup.STORE]),
    "certs": Verb("every certificate groundwork manages, with the days it has left; `certs renew` renews them",
                  "List every certificate groundwork manages (the CA and what it issued on the ops host, etcd's "
                  "copies on each member, Kubernetes' on each master and node) with subject, SANs, issuer "
                  "fingerprint, not-after and days left, and check each: verified by the CA, the same as the CA "
                  "host's copy, more than 7 days left (a failure, exit 5), more than 30 (a warning, exit 0); this "
                  "changes nothing. `certs renew` issues again etcd's and Kubernetes' certificates with fewer "
                  "than --within days left (30) or named with --name, delivers them and restarts their consumers "
                  "one etcd member and one master at a time, each healthy before the next; --dry-run shows the "
                  "plan.", lambda a: "certs_renew" if a.action == "renew" else "certs", _certs_stages,
                  _certs_arguments, extra_checks=lambda a: [CERTIFICATES], show_tables=True,
                  renewal=lambda a: Renewal(a.within, frozenset(a.name)), check_inventory=_certs_renew_names),
    "readiness": Verb("whether each Kubernetes host is ready for kubeadm: its preflight's checks",
                      "Check every master_compute host as kubeadm's preflight would (seed 003): swap off, the ports "
                      "of its roles free or held by their own program and nothing else in the NodePort range, MAC "
                      "address and product_uuid unique, docker's cgroup driver the kubelet's, br_netfilter and "
                      "ip_forward, its name resolving to its address and back, time in sync, CPUs and memory. A "
                      "verdict per host, \"ready for kubeadm\" or not, heads the report; what a check cannot decide "
                      "on a host is listed as such, never passed. Changes nothing; exit 5 when a host is not ready.",
                      "readiness", [], extra_checks=lambda a: [READINESS]),
    "etcd-restore": Verb("restore every etcd member from a kept snapshot (needs --confirm)",
                         "Restore every etcd member from a snapshot kept on the ops host (etcd-backup), after checking "
                         "its SHA-256: each member is stopped, its data directory kept aside as "
                         "DATA_DIR.before-SNAPSHOT, restored, and the members start again as a new cluster holding the "
                         "snapshot's keys. Everything written after the snapshot is lost, which is why --confirm is "
                         "required.", "etcd_restore",
                         lambda a: [etcd.CERTS, etcd_backup.fetch_stage(a.snapshot), etcd_backup.RESTORE,
                                    etcd.MEMBERS], _etcd_restore_arguments),
    "backup": Verb("what cannot be rebuilt, in one encrypted archive on this machine",
                   "Back up what groundwork cannot rebuild from the inventory: the CA's folder on the ops host (its "
                   "key included), the DNS primary's zone files with their serials, the registry's htpasswd, an "
                   "etcd snapshot from a healthy member, and every host's managed configuration files. One "
                   "archive on this machine (backups/RUN_ID.age beside the config, or --output), encrypted in the "
                   "age format with backup_passphrase from the secrets, with a manifest and the SHA-256 of each "
                   "file; nothing of it is ever written unencrypted. No archive is written when a host failed.",
                   "backup", [etcd_backup.SAVE, backup.COLLECT], _backup_arguments,
                   secrets=frozenset({"backup_passphrase"}), conclude=write_archive),
    "restore": Verb("put an archive's CA, zones, htpasswd and etcd snapshot back, then run every stage "
                    "(needs --confirm)",
                    "Restore from an archive of `groundwork backup`: it is decrypted with backup_passphrase and "
                    "every file checked against the manifest before any host is contacted (a wrong passphrase or "
                    "an altered archive: exit 3, nothing written). Then the CA's folder, the zone files, the "
                    "registry's htpasswd and the etcd snapshot (into etcd.backup_dir on the ops host, for "
                    "etcd-restore) are written back where they differ, a zone never with a serial lower than the "
                    "host has or serves, and every stage of the pipeline runs and is verified. The configuration "
                    "files in the archive are not put back: the pipeline writes them from the inventory.",
                    "restore", _restore_stages, _restore_arguments, all_checks=True,
                    secrets=frozenset({"backup_passphrase"}), open_inputs=open_archive),
    "remove-host": Verb("take out of the platform a host taken out of the inventory (needs --confirm)",
                        "Take a host out of the platform once it is out of the inventory: its etcd membership is "
                        "removed by the first healthy member (refused when the members left would not hold a "
                        "quorum), its Node object is deleted from the Kubernetes API, what both held of it is "
                        "written in the run record, and every stage then runs on the inventory without it: its "
                        "records leave the zones (serials stepped), the L4 proxy's backends, etcd's cluster and "
                        "the apiservers' etcd servers are written without it. A host still in the inventory is "
                        "refused (exit 2). The host itself is not contacted.",
                        "remove_host", _remove_host_stages, _remove_host_arguments, all_checks=True,
                        check_inventory=_host_left_the_inventory),
}
AUDIT_HELP = "check a reports folder's checksums, signatures and hash chain"
# runbooks/NAME.py -> the verb and the arguments it stands for
RUNBOOKS: dict[str, tuple[str, ...]] = {"full": ("run",), **{part: ("run", part) for part in PARTS},
                                        **{v.runbook if isinstance(v.runbook, str) else name: (name,)
                                           for name, v in VERBS.items() if name != "run"},
                                        "audit": ("audit",)}


def run_verb(name: str, argv: list[str], prog: str | None) -> int:
    """prog: how --help and usage errors name the command (None: the script's own name, for a runbook)."""
    if name == "audit":
        return audit_command.main(argv, prog=prog)
    verb = VERBS[name]
    return cli.main(verb.stages, runbook=verb.runbook, description=verb.description, argv=argv,
                    all_checks=verb.all_checks, add_arguments=verb.add_arguments, secrets=verb.secrets,
                    prog=prog, extra_checks=verb.extra_checks, show_tables=verb.show_tables, renewal=verb.renewal,
                    check_inventory=verb.check_inventory, open_inputs=verb.open_inputs, conclude=verb.conclude)


def runbook(name: str, argv: list[str] | None = None) -> int:
    """`python runbooks/NAME.py ARGS`: the verb it stands for, with its fixed arguments first."""
    verb, *fixed = RUNBOOKS[name]
    return run_verb(verb, [*fixed, *(sys.argv[1:] if argv is None else argv)], prog=None)


def usage() -> str:
    lines = ["usage: groundwork VERB [options]   (groundwork VERB --help for a verb's options)", "",
             "Builds, checks and documents the infrastructure a self-built Kubernetes platform stands on.",
             "The project (config.yaml, inventory/, reports/) is the working directory, or --config FILE, or "
             f"${cli.CONFIG_ENV}.", "", "verbs:"]
    helps = {**{name: v.help for name, v in VERBS.items()}, "audit": AUDIT_HELP}
    lines += [f"  {name:<14} {text}" for name, text in helps.items()]
    lines += ["", "exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid inventory, 4 a host failed, "
              "5 verification failed or incomplete, 6 plan refused, 7 another run holds the inventory, 130 interrupted"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The console command."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return cli.EXIT_OK if argv else cli.EXIT_USAGE
    if argv[0] == "--version":
        print(f"groundwork {groundwork.__version__}")
        return cli.EXIT_OK
    if argv[0] not in VERBS and argv[0] != "audit":
        print(f"groundwork: unknown verb {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return cli.EXIT_USAGE
    return run_verb(argv[0], argv[1:], prog=f"groundwork {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())

