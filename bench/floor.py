"""The floor under a no-op run: what no runbook can do without, timed by the bench as a process of its own.

Python starts and imports what runbooks/full.py imports, reads the inventory, logs in to every host over SSH
(in parallel, host keys checked as a run checks them) and makes one round trip to each, then exits.
Usage: python -m bench.floor -i INVENTORY
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import groundwork.commands  # noqa: F401 - what a runbook imports, timed with the rest
from groundwork.cli import _nornir
from groundwork.inventory import load_inventory
from groundwork.remote import Remote


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("-i", "--inventory", type=Path, required=True)
    inventory = load_inventory(p.parse_args(argv).inventory)
    nr = _nornir({}, None, inventory)

    def round_trip(name: str) -> int:
        return Remote.for_host(nr.inventory.hosts[name], nr.config).run("true", check=False).rc

    with ThreadPoolExecutor(max_workers=min(64, len(inventory.hosts))) as pool:
        failed = [rc for rc in pool.map(round_trip, inventory.hosts) if rc != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
