"""`groundwork audit`: check a reports folder long after its runs: every run folder's checksums and signature,
and the hash chain that links each run to the one before it. Names the first folder that was altered, removed
or inserted.

Give it the operator's public key from your own copy (--key; the change ticket, the key's owner), never one
taken from the controller under audit, and the head an earlier audit printed (--expect-head), so that runs
removed from the newest end show too.

exit codes: 0 every folder intact and the chain whole, 2 bad command line or no such folder, 3 a signing key
that cannot be read, 8 a folder altered, removed, renamed or inserted (each named), 9 no trusted key: the
history cannot be verified (checked anyway with --accept-unverified, which then exits 0 or 8)
"""

import argparse
import sys
from pathlib import Path

import yaml

from groundwork.audit import audit, head_line
from groundwork.cli import CONFIG_ENV, default_config
from groundwork.inventory import InventoryError
from groundwork.signing import SignatureError, fingerprint, load_signing_key

EXIT_OK, EXIT_USAGE, EXIT_KEY, EXIT_TAMPERED, EXIT_UNVERIFIED = 0, 2, 3, 8, 9


def trusted_key(args) -> str | None:
    """The fingerprint every folder must be signed with: --key's public key, else the configured signing key's."""
    if args.key:
        return fingerprint(args.key.read_text())
    config = yaml.safe_load(args.config.read_text()) if args.config.exists() else {}
    key = load_signing_key(config or {}, args.config.resolve())
    return key.fingerprint if key else None


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", type=Path, metavar="DIR",
                   help="the reports folder (default: reports/ beside the config)")
    p.add_argument("--key", type=Path, metavar="PUBFILE",
                   help="the public key (.pub) every run must be signed with (default: the configured signing key's)")
    p.add_argument("-c", "--config", type=Path, default=default_config(), metavar="FILE",
                   help=f"the project's config file (default: ${CONFIG_ENV}, else ./config.yaml)")
    p.add_argument("--expect-head", metavar="RUN[:DIGEST]",
                   help="the head an earlier audit printed: it must still be on the chain (catches the newest runs "
                        "removed with .chain-head rewritten)")
    p.add_argument("--accept-unverified", action="store_true",
                   help="with no trusted key, check checksums and the chain anyway (exit 0 or 8, not 9)")
    args = p.parse_args(argv)
    args.reports = args.reports or args.config.resolve().parent / "reports"
    if not args.reports.is_dir():
        print(f"audit: {args.reports} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        trusted = trusted_key(args)
    except (OSError, SignatureError) as exc:
        print(f"audit: --key {args.key}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InventoryError as exc:
        print(exc.report().replace("inventory is invalid", "the signing key cannot be used"), file=sys.stderr)
        return EXIT_KEY
    if trusted is None and not args.accept_unverified:
        print(f"audit: UNVERIFIED: no trusted key (--key, or groundwork.signing_key in {args.config}): anyone who "
              f"can write {args.reports} can re-sign its history with a key of their own; give --key with the "
              "operator's public key from your own copy, or --accept-unverified to check the rest anyway",
              file=sys.stderr)
        return EXIT_UNVERIFIED
    states, problems = audit(args.reports, trusted, args.expect_head)
    print(f"audit of {args.reports}: {len(states)} run folder(s); "
          + (f"every run must be signed by {trusted}" if trusted else "UNVERIFIED: no trusted key, signatures "
             "checked only against the key each run names"))
    print(f"HEAD: {head_line(args.reports) or '(none)'}   (note it in the change ticket; give it back as "
          "--expect-head next time)")
    by_folder = {}
    for name, problem in problems:
        by_folder.setdefault(name, []).append(problem)
    for state in states:
        found = by_folder.get(state.name, [])
        status = "ok" if not found else found[0].split(":")[0].upper() if found[0].startswith("inserted") \
            else "ALTERED"
        if state.note and not found:
            print(f"  {state.name:<34} {'OPEN':<8} {state.note}")
            continue
        print(f"  {state.name:<34} {status:<8} {state.signer if state.signer != 'unsigned' else 'unsigned'}"
              + ("" if state.chained else ", no chain record"))
    for name in sorted(set(by_folder) - {s.name for s in states}):
        print(f"  {name:<34} REMOVED")
    if not problems:
        print("every folder matches its checksums and signature, and the chain is whole")
        return EXIT_OK
    for name, problem in problems:
        print(f"  {name}: {problem}")
    first, what = problems[0]
    print(f"FIRST PROBLEM: {first}: {what}")
    return EXIT_TAMPERED
