#!/usr/bin/env python3
"""Check a reports folder long after its runs: every run folder's checksums and signature, and the hash chain
that links each run to the one before it. Names the first folder that was altered, removed or inserted.

exit codes: 0 every folder intact and the chain whole, 2 bad command line or no such folder, 3 a signing key
that cannot be read, 8 a folder altered, removed, renamed or inserted (each named)
"""

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401 - puts the project on sys.path
import yaml

from groundwork.audit import audit
from groundwork.cli import PROJECT
from groundwork.inventory import InventoryError
from groundwork.signing import SignatureError, fingerprint, load_signing_key

EXIT_OK, EXIT_USAGE, EXIT_KEY, EXIT_TAMPERED = 0, 2, 3, 8


def trusted_key(args) -> str | None:
    """The fingerprint every folder must be signed with: --key's public key, else the configured signing key's."""
    if args.key:
        return fingerprint(args.key.read_text())
    config = yaml.safe_load(args.config.read_text()) if args.config.exists() else {}
    key = load_signing_key(config or {}, args.config.resolve())
    return key.fingerprint if key else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", type=Path, default=PROJECT / "reports", metavar="DIR", help="the reports folder")
    p.add_argument("--key", type=Path, metavar="PUBFILE",
                   help="the public key (.pub) every run must be signed with (default: the configured signing key's)")
    p.add_argument("-c", "--config", type=Path, default=PROJECT / "config.yaml", metavar="FILE")
    args = p.parse_args()
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
    states, problems = audit(args.reports, trusted)
    print(f"audit of {args.reports}: {len(states)} run folder(s); "
          + (f"every signed run must be signed by {trusted}" if trusted else "no trusted key: signatures checked "
             "against the key each run names"))
    by_folder = {}
    for name, problem in problems:
        by_folder.setdefault(name, []).append(problem)
    for state in states:
        found = by_folder.get(state.name, [])
        status = "ok" if not found else found[0].split(":")[0].upper() if found[0].startswith("inserted") \
            else "ALTERED"
        print(f"  {state.name:<34} {status:<8} {state.signer if state.signer != 'unsigned' else 'unsigned'}"
              + ("" if state.chained else ", before the chain began"))
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


if __name__ == "__main__":
    sys.exit(main())
