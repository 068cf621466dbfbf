"""python -m lab {up,down,status,start,stop,kill,kubernetes} — the local lab for the inventory (run as root)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from groundwork.inventory import InventoryError, load_inventory
from lab import lab

PROJECT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    p.add_argument("-i", "--inventory", type=Path, default=PROJECT / "inventory",
                   help="the inventory whose hosts the lab materialises (default: the project's)")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build what is missing and boot every host that is not running")
    up.add_argument("--fresh", action="store_true", help="recreate the hosts from the base image")
    down = sub.add_parser("down", help="stop every host and remove what the lab made")
    down.add_argument("--purge", action="store_true", help="remove the cached base image and repository too")
    sub.add_parser("status", help="show each host's container and SSH state")
    sub.add_parser("kubernetes", help="build (once) the lab's Kubernetes v1.20 server tarball from Debian's source")
    for name, text in (("start", "boot one host (again)"), ("stop", "shut one host down in order"),
                       ("kill", "kill one host's container at once, as a crash would")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("host")
    args = p.parse_args(argv)

    if os.geteuid() != 0:
        print("the lab needs root (namespaces, mounts, systemd-nspawn)", file=sys.stderr)
        return 2
    try:
        inventory = load_inventory(args.inventory, key_files=False)  # the lab makes the key and known_hosts
    except InventoryError as exc:
        print(exc.report(), file=sys.stderr)
        return 3
    hosts = {h.name: h for h in lab.lab_hosts(inventory)}
    try:
        if args.command == "up":
            lab.up(inventory, fresh=args.fresh)
        elif args.command == "down":
            lab.down(inventory, purge=args.purge)
        elif args.command == "kubernetes":
            from lab.kubernetes import build_kubernetes
            print(build_kubernetes())
        elif args.command == "status":
            for row in lab.status(inventory):
                print(f"{row['host']:<12} {row['address']:<15} {row['container']:<22} ssh {row['ssh']}")
        else:
            if args.host not in hosts:
                print(f"unknown host {args.host!r} (hosts: {', '.join(hosts)})", file=sys.stderr)
                return 2
            host = hosts[args.host]
            if args.command == "start":
                lab.up(inventory, only=[host.name])
            elif args.command == "stop":
                lab.stop_host(host)
            else:
                lab.kill_host(host)
    except lab.LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
