"""python -m bench — time the pipeline on the local lab, at 5 hosts and more (run as root, after lab/setup).

For each host count it builds an inventory (the project's five hosts plus extra master_compute hosts
hdss7-23, hdss7-24, ... on the same network), brings the lab to exactly those hosts, and times, as separate
runbook processes the way an operator runs them:

  cold     runbooks/full.py on freshly recreated hosts (every package installed, every file written)
  floor    bench/floor.py: Python and the imports of a runbook, one SSH login and one round trip per host
  noop     runbooks/full.py --no-verify on converged hosts; must report 0 hosts changed, else the bench fails
  noop+v   runbooks/full.py on converged hosts, verification pass included
  dry      runbooks/full.py --dry-run
  verify   runbooks/verify.py
  --day-two adds the day-two verbs on converged hosts: `certs` (every certificate listed and checked),
  `certs renew` with nothing due (must change nothing), and `certs renew --name client` (one certificate
  issued again and rolled through every etcd member and master, each restarted in turn), `backup`, and
  `restore` of that backup on the same hosts (only its etcd snapshot is written back)
  --graph adds cold and no-op runs with --order graph (each stage on a host as soon as what it needs has
  ended), each cold run on hosts recreated the same way, and prints their ratio to pipeline order

Each is repeated (--repeat; cold: --cold-repeat) and the median is reported, with the peak memory (RSS) of
the runbook process and, from the run record, each stage's wall time (its slowest host). --workers adds no-op
runs at other num_workers values. Results are printed as a table and written as JSON (--out).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TARGETS = {"noop": 3.0, "verify": 10.0, "cold": 90.0}  # seconds, on the 5-host lab (issue 9)
# Past the project's five hosts the bench leaves Kubernetes out: every extra master_compute host would be a
# control plane (45 apiservers, rolled one at a time), which no one builds and this machine's memory does not hold.
KUBERNETES_UP_TO = 5


def inventory_with(hosts: int, folder: Path) -> Path:
    """The project's inventory with extra master_compute hosts hdss7-23... until there are `hosts` hosts
    (without Kubernetes past KUBERNETES_UP_TO hosts)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groups.yaml").write_text((PROJECT / "inventory" / "groups.yaml").read_text())
    defaults = yaml.safe_load((PROJECT / "inventory" / "defaults.yaml").read_text())
    if hosts > KUBERNETES_UP_TO:
        defaults["data"].pop("kubernetes", None)
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults, sort_keys=False))
    data = yaml.safe_load((PROJECT / "inventory" / "hosts.yaml").read_text())
    taken = {int(h["hostname"].rsplit(".", 1)[1]) for h in data.values()}
    octet = 23
    while len(data) < hosts:
        if octet >= 200:
            raise SystemExit(f"bench: {hosts} hosts do not fit the lab network 10.4.7.0/24 below the ops host")
        if octet not in taken:
            data[f"hdss7-{octet}"] = {"hostname": f"10.4.7.{octet}", "groups": ["master_compute"]}
        octet += 1
    (folder / "hosts.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def lab(*args: str, inventory: Path) -> None:
    done = subprocess.run([PYTHON, "-m", "lab", "-i", str(inventory), *args], cwd=PROJECT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: python -m lab {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def machine_busy_cpu_s() -> float:
    """CPU seconds this machine has been busy since it booted, all CPUs together: the runbook's and the lab
    hosts' (they run on this machine) alike (/proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def timed_run(runbook: str, args: list[str], reports: Path) -> dict:
    """One runbook process: wall time, exit code, peak RSS, the machine's busy CPU seconds while it ran, and its
    run record."""
    reports.mkdir(parents=True, exist_ok=True)
    before = set(reports.iterdir())
    busy_before = machine_busy_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, str(PROJECT / "runbooks" / f"{runbook}.py"), *args, "--reports", str(reports)],
                            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    busy = machine_busy_cpu_s() - busy_before
    proc.returncode = os.waitstatus_to_exitcode(status)
    new = sorted(set(reports.iterdir()) - before - {reports / "index.html"})
    record = json.loads((new[-1] / "run.json").read_text()) if new and (new[-1] / "run.json").exists() else {}
    return {"wall": wall, "rc": proc.returncode, "rss_mb": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "machine_busy_cpu_s": busy, "record": record,
            "output": output.decode(errors="replace")}


def stage_walls(record: dict) -> dict[str, float]:
    walls: dict[str, float] = {}
    for entry in record.get("entries", []):
        walls[entry["stage"]] = max(walls.get(entry["stage"], 0.0), entry["duration"])
    return walls


def changed_hosts(record: dict) -> set[str]:
    return {e["host"] for e in record.get("entries", []) if e["status"] == "changed"}


def measure(name: str, runbook: str, args: list[str], repeat: int, reports: Path, inventory: Path,
            before_each=None, expect_no_change: bool = False) -> dict:
    runs = []
    for i in range(repeat):
        if before_each:
            before_each()
        run = timed_run(runbook, ["-i", str(inventory), *args], reports)
        failed_checks = [c for c in run["record"].get("checks") or [] if c["outcome"] in ("failed", "error")]
        if run["rc"] == 5 and failed_checks:  # timed all the same; the failures are reported with the numbers
            print(f"  {name:<8} run {i + 1}: {len(failed_checks)} check(s) failed, e.g. {failed_checks[0]['host']}: "
                  f"{failed_checks[0]['message'][:160]}", flush=True)
        elif run["rc"] != 0:
            raise SystemExit(f"bench: {name} run {i + 1} exited {run['rc']}:\n{run['output'][-3000:]}")
        run["failed_checks"] = len(failed_checks)
        if expect_no_change and changed_hosts(run["record"]):
            raise SystemExit(f"bench: the no-op rerun changed {sorted(changed_hosts(run['record']))}: "
                             "the pipeline is not idempotent")
        runs.append(run)
        print(f"  {name:<8} run {i + 1}/{repeat}: {run['wall']:.2f}s", flush=True)
    stages = {s: statistics.median(stage_walls(r["record"]).get(s, 0.0) for r in runs)
              for s in stage_walls(runs[0]["record"])}
    return {"median_s": statistics.median(r["wall"] for r in runs), "runs_s": [round(r["wall"], 3) for r in runs],
            "peak_rss_mb": max(r["rss_mb"] for r in runs), "cpu_s": round(statistics.median(r["cpu"] for r in runs), 3),
            "machine_busy_cpu_s": round(statistics.median(r["machine_busy_cpu_s"] for r in runs), 2),
            "stages_s": {k: round(v, 3) for k, v in stages.items()},
            "changed_hosts": len(changed_hosts(runs[-1]["record"])),
            "failed_checks": [r["failed_checks"] for r in runs]}


def measure_floor(inventory: Path, repeat: int) -> dict:
    """The floor under a no-op (bench/floor.py): Python and the imports, one SSH login and one round trip per host."""
    walls = []
    for i in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([PYTHON, "-m", "bench.floor", "-i", str(inventory)], cwd=PROJECT, capture_output=True,
                              text=True)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"bench: the floor run {i + 1} exited {done.returncode}:\n{done.stderr[-3000:]}")
        print(f"  {'floor':<8} run {i + 1}/{repeat}: {walls[-1]:.2f}s", flush=True)
    return {"median_s": statistics.median(walls), "runs_s": [round(w, 3) for w in walls]}


def profile_noop(inventory: Path, reports: Path, top: int = 18) -> str:
    """Where a no-op run's time goes: cProfile of runbooks/full.py --no-verify, by cumulative time."""
    out = reports / "noop.prof"
    reports.mkdir(parents=True, exist_ok=True)
    subprocess.run([PYTHON, "-m", "cProfile", "-o", str(out), str(PROJECT / "runbooks" / "full.py"), "-i",
                    str(inventory), "--no-verify", "--reports", str(reports)], cwd=PROJECT, capture_output=True)
    text = io.StringIO()
    pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def bench_hosts(hosts: int, args, work: Path) -> dict:
    inventory = inventory_with(hosts, work / f"inventory-{hosts}")
    reports = work / f"reports-{hosts}"
    kubernetes = hosts <= KUBERNETES_UP_TO
    print(f"\n== {hosts} hosts{'' if kubernetes else ', without Kubernetes'}", flush=True)
    result: dict = {"hosts": hosts, "kubernetes": kubernetes}
    if not args.skip_cold:
        fresh = lambda: lab("up", "--fresh", inventory=inventory)  # noqa: E731
        result["cold"] = measure("cold", "full", [], args.cold_repeat, reports, inventory, before_each=fresh)
        if args.graph:
            result["cold graph"] = measure("cold graph", "full", ["--order", "graph"], args.cold_repeat, reports,
                                           inventory, before_each=fresh)
    else:
        lab("up", inventory=inventory)
        timed_run("full", ["-i", str(inventory), "--no-verify"], reports)  # converge first
    before, started = machine_busy_cpu_s(), time.perf_counter()
    time.sleep(5)  # the converged lab at rest: its control planes and etcd use CPU with no run at all
    result["rest_busy_cpu_per_s"] = round((machine_busy_cpu_s() - before) / (time.perf_counter() - started), 2)
    result["floor"] = measure_floor(inventory, args.repeat)
    result["noop"] = measure("noop", "full", ["--no-verify"], args.repeat, reports, inventory, expect_no_change=True)
    if args.graph:
        result["noop graph"] = measure("noop graph", "full", ["--no-verify", "--order", "graph"], args.repeat,
                                       reports, inventory, expect_no_change=True)
    verify_repeat = args.verify_repeat or args.repeat
    result["noop+v"] = measure("noop+v", "full", [], verify_repeat, reports, inventory, expect_no_change=True)
    result["dry"] = measure("dry", "full", ["--dry-run"], args.repeat, reports, inventory, expect_no_change=True)
    result["verify"] = measure("verify", "verify", [], verify_repeat, reports, inventory)
    result["workers"] = {}
    for workers in args.workers:
        result["workers"][str(workers)] = measure(f"noop w{workers}", "full", ["--no-verify", "-w", str(workers)],
                                                  args.repeat, reports, inventory, expect_no_change=True)
    if args.day_two:
        result["certs"] = measure("certs", "certs", [], args.repeat, reports, inventory)
        result["renew"] = measure("renew", "certs", ["renew"], args.repeat, reports, inventory,
                                  expect_no_change=True)
        result["renew client"] = measure("renew client", "certs", ["renew", "--name", "client"], 1, reports,
                                         inventory)
        archives = reports.parent / "backups"
        result["backup"] = measure("backup", "backup", ["--output", str(archives)], args.repeat, reports, inventory)
        newest = sorted(archives.glob("*.age"))[-1]
        # On converged hosts only the archive's etcd snapshot is written back (into etcd.backup_dir).
        result["restore"] = measure("restore", "restore", ["--archive", str(newest), "--confirm"], 1, reports,
                                    inventory)
    if args.profile:
        result["profile"] = profile_noop(inventory, reports)
    return result


def table(results: list[dict]) -> str:
    kinds = ["cold", "noop", "noop+v", "dry", "verify"]
    lines = [f"{'hosts':>5}  " + "  ".join(f"{k:>8}" for k in kinds) + "   peak RSS",
             "-" * 66]
    for r in results:
        cells = [f"{r[k]['median_s']:7.2f}s" if k in r else f"{'-':>8}" for k in kinds]
        rss = max(r[k]["peak_rss_mb"] for k in kinds if k in r)
        lines.append(f"{r['hosts']:>5}  " + "  ".join(cells) + f"   {rss:6.0f} MB"
                     + ("" if r.get("kubernetes", True) else "   (without Kubernetes)"))
    for r in results:
        for workers, w in r.get("workers", {}).items():
            lines.append(f"{r['hosts']:>5} hosts, num_workers {workers:>3}: no-op {w['median_s']:.2f}s")
    for r in results:
        for kind in kinds:
            if kind in r and any(r[kind].get("failed_checks", [])):
                lines.append(f"{r['hosts']:>5} hosts, {kind}: checks failed in the runs: {r[kind]['failed_checks']}")
    five = next((r for r in results if r["hosts"] == 5), None)
    if five:
        lines.append("\ntargets on the 5-host lab:")
        for kind, limit in TARGETS.items():
            if kind in five:
                got = five[kind]["median_s"]
                lines.append(f"  {kind:<7} {got:6.2f}s  target < {limit:.0f}s  {'met' if got < limit else 'MISSED'}")
        fifty = next((r for r in results if r["hosts"] == 50), None)
        if fifty:
            got, limit = fifty["noop"]["median_s"], 2 * five["noop"]["median_s"]
            lines.append(f"  noop at 50 hosts {got:.2f}s  target < {limit:.2f}s (twice 5 hosts)  "
                         f"{'met' if got < limit else 'MISSED'}")
    graphed = [r for r in results if "cold graph" in r or "noop graph" in r]
    if graphed:
        lines.append("\nstages as a graph (--order graph) against pipeline order, same lab, same run (target: cold at "
                     "most 0.7x):")
        for r in graphed:
            for kind in ("cold", "noop"):
                if f"{kind} graph" in r and kind in r:
                    graph, strict = r[f"{kind} graph"]["median_s"], r[kind]["median_s"]
                    lines.append(f"  {r['hosts']:>3} hosts, {kind}: graph {graph:.2f}s, pipeline order {strict:.2f}s: "
                                 f"{graph / strict:.2f}x")
    lines.append(f"\nthe machine's busy CPU (runbook and lab hosts together, {os.cpu_count()} CPUs): no order of the "
                 "work can finish sooner than busy CPU seconds / CPUs")
    for r in results:
        if "rest_busy_cpu_per_s" in r:
            lines.append(f"  {r['hosts']:>3} hosts, at rest    : {r['rest_busy_cpu_per_s']:.2f} CPU-s each second, "
                         "with no run")
        for kind in ("cold", "cold graph", "noop", "noop graph", "verify"):
            if kind in r and "machine_busy_cpu_s" in r[kind]:
                busy, wall = r[kind]["machine_busy_cpu_s"], r[kind]["median_s"]
                lines.append(f"  {r['hosts']:>3} hosts, {kind:<10}: {busy:7.1f} CPU-s in {wall:6.1f}s "
                             f"({busy / (wall * os.cpu_count()):4.0%} busy), bound {busy / os.cpu_count():6.1f}s")
    verbs = [k for k in ("certs", "renew", "renew client", "backup", "restore") if any(k in r for r in results)]
    if verbs:
        lines.append("\nday-two verbs (median wall time):")
        for r in results:
            lines.append(f"  {r['hosts']:>3} hosts: " + ", ".join(f"{k} {r[k]['median_s']:.2f}s" for k in verbs
                                                                if k in r))
    lines.append("\nno-op against its floor (Python and imports, one SSH login and one round trip per host; "
                 "target: within 0.5 s):")
    for r in results:
        if "floor" in r:
            gap = r["noop"]["median_s"] - r["floor"]["median_s"]
            lines.append(f"  {r['hosts']:>3} hosts: no-op {r['noop']['median_s']:.2f}s, floor {r['floor']['median_s']:.2f}s, "
                         f"{gap:.2f}s above it")
    lines.append("\nno-op: CPU time of the runbook process itself (the rest is waiting on the hosts):")
    for r in results:
        lines.append(f"  {r['hosts']:>3} hosts: {r['noop'].get('cpu_s', 0):.2f}s CPU of {r['noop']['median_s']:.2f}s")
    lines.append("\nstage wall times (median, slowest host), no-op:")
    for r in results:
        lines.append(f"  {r['hosts']:>3} hosts: " + ", ".join(f"{s} {t:.2f}s" for s, t in r["noop"]["stages_s"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, nargs="+", default=[5], help="host counts to measure (default: 5)")
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5; the median is kept)")
    p.add_argument("--cold-repeat", type=int, default=3, help="cold runs per host count (default 3)")
    p.add_argument("--verify-repeat", type=int, help="runs of noop+v and verify (default: --repeat); the checks "
                   "grow with the square of the hosts (each host resolves and pings every other)")
    p.add_argument("--skip-cold", action="store_true", help="no cold runs (hosts are not recreated)")
    p.add_argument("--workers", type=int, nargs="*", default=[], help="also time no-op runs at these num_workers")
    p.add_argument("--graph", action="store_true", help="also time cold and no-op runs with --order graph, and "
                   "print their ratio to pipeline order")
    p.add_argument("--profile", action="store_true", help="add a cProfile of one no-op run to the output")
    p.add_argument("--day-two", action="store_true", help="also time certs, certs renew (nothing due), "
                   "certs renew --name client, backup and restore (of that backup, on the same hosts)")
    p.add_argument("--out", type=Path, help="JSON results file (default: bench/results/<UTC time>.json)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: run as root (the lab needs it)", file=sys.stderr)
        return 2
    out = args.out or PROJECT / "bench" / "results" / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".json")
    results = []
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
               "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as work:
        try:
            for hosts in args.hosts:
                results.append(bench_hosts(hosts, args, Path(work)))
                # Written after each host count, so a later failure keeps what was measured.
                out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
        finally:
            # Back to the project's five hosts, converged, as lab/setup leaves the lab.
            if any(h != 5 for h in args.hosts):
                print("\nbench: putting the lab back to the project's five hosts", flush=True)
                lab("down", inventory=inventory_with(max(args.hosts), Path(work) / "inventory-down"))
                lab("up", inventory=PROJECT / "inventory")
                timed_run("full", ["--no-verify"], Path(work) / "reports-restore")
    print("\n" + table(results))
    for r in results:
        if "profile" in r:
            print(f"\nprofile of a no-op run at {r['hosts']} hosts (cumulative):\n{r['profile']}")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
