"""Prove the promise ledger: every mutation of promises/ledger.yaml must make its tests fail.

    .venv/bin/python -m promises              # every mutation, two at a time
    .venv/bin/python -m promises --only ID    # the mutations of one promise (repeatable)
    .venv/bin/python -m promises --list       # the promises and their mutations, nothing run

Each worker copies the tree (the files git knows of, as they are in the working tree) into a scratch folder
once, checks that the ledger's tests pass there unchanged, then for each mutation replaces its text in the
scratch copy, runs its tests (pytest, no lab) and puts the file back. A mutation is killed when its tests fail
and print what the entry expects; it survives when they pass. Exit 0 when every mutation was killed, 1 when
any survived or could not be applied, 2 for a bad ledger.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "promises" / "ledger.yaml"
TEST_TIMEOUT = 300


class LedgerError(Exception):
    pass


@dataclass(frozen=True)
class Mutation:
    promise: str
    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    expect: str = ""

    @property
    def label(self) -> str:
        return f"{self.promise}: {self.name}"


def load_ledger(path: Path = LEDGER, root: Path = ROOT) -> tuple[list[dict], list[Mutation]]:
    """The ledger's promises and their mutations; LedgerError for an entry that cannot be applied as written
    (its text not in its file exactly once, a test file that does not exist)."""
    promises = yaml.safe_load(path.read_text())
    mutations, problems, seen = [], [], set()
    for p in promises:
        if p["id"] in seen:
            problems.append(f"{p['id']}: listed twice")
        seen.add(p["id"])
        for field in ("promise", "guards", "tests", "mutations"):
            if not p.get(field):
                problems.append(f"{p['id']}: no {field}")
        for m in p.get("mutations") or []:
            tests = tuple(m.get("tests") or p.get("tests") or [])
            mutation = Mutation(p["id"], m["name"], m["file"], m["find"], m["replace"], tests, m.get("expect", ""))
            try:
                count = (root / mutation.file).read_text().count(mutation.find)
            except OSError:
                count = -1
            if count != 1:
                problems.append(f"{mutation.label}: its text is in {mutation.file} {count} times, not once")
            for test in tests:
                if not (root / test.split("::")[0]).is_file():
                    problems.append(f"{mutation.label}: no test file {test.split('::')[0]}")
            mutations.append(mutation)
    if problems:
        raise LedgerError("\n".join(problems))
    return promises, mutations


def scratch_copy(root: Path) -> Path:
    """The tree as git sees it (tracked and new files, ignored ones left out), in a folder of its own."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    scratch = Path(tempfile.mkdtemp(prefix="gw-promises-"))
    for name in filter(None, (n.decode() for n in listed)):
        source = root / name
        if source.is_symlink():  # groundwork/tasks -> ../tasks: the package maps the top-level folders
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).symlink_to(os.readlink(source))
        elif source.is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, scratch / name)
    return scratch


def pytest(scratch: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    """The tests in the scratch copy: its own code first on the import path, never the checkout's."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not lab",
                           "--no-header", "-o", "addopts=", *tests], cwd=scratch, env=env, capture_output=True,
                          text=True, timeout=TEST_TIMEOUT)


def check_imports(scratch: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    done = subprocess.run([sys.executable, "-c", "import groundwork.tasks as t; print(t.__file__)"], cwd=scratch, env=env, capture_output=True, text=True)
    if done.returncode != 0 or any(not p.startswith(str(scratch)) for p in done.stdout.split()):
        raise LedgerError(f"the scratch copy does not import its own code: {done.stdout}{done.stderr}")


def try_mutation(scratch: Path, m: Mutation) -> tuple[str, str, float]:
    """(verdict, detail, seconds): killed, survived, or error (the tests could not run)."""
    path = scratch / m.file
    original = path.read_text()
    path.write_text(original.replace(m.find, m.replace, 1))
    started = time.monotonic()
    try:
        done = pytest(scratch, m.tests)
    except subprocess.TimeoutExpired:
        return "killed", f"the tests did not finish in {TEST_TIMEOUT}s", time.monotonic() - started
    finally:
        path.write_text(original)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if done.returncode == 0:
        return "survived", "every test still passed", seconds
    if done.returncode != 1:
        return "error", f"pytest exit {done.returncode}: {output.strip().splitlines()[-1:]}", seconds
    if m.expect and not re.search(m.expect, output):
        return "error", f"the tests failed, but not printing {m.expect!r}: " + \
            " | ".join(line for line in output.splitlines() if line.startswith(("FAILED", "ERROR")))[:300], seconds
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in output.splitlines() if line.startswith("FAILED ")]
    return "killed", ", ".join(failed) or "failed", seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m promises", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", default=[], metavar="ID", help="only this promise's mutations")
    p.add_argument("--list", action="store_true", help="list the promises and their mutations")
    p.add_argument("-j", "--jobs", type=int, default=2, help="mutations tried at once (default 2)")
    args = p.parse_args(argv)
    try:
        promises, mutations = load_ledger()
    except (LedgerError, OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"promises: the ledger {LEDGER} is not usable:\n{exc}", file=sys.stderr)
        return 2
    unknown = set(args.only) - {p["id"] for p in promises}
    if unknown:
        print(f"promises: no promise {', '.join(sorted(unknown))} in the ledger", file=sys.stderr)
        return 2
    chosen = [m for m in mutations if not args.only or m.promise in args.only]
    if args.list:
        for promise in promises:
            print(f"{promise['id']}: {promise['promise']}")
            for m in (m for m in mutations if m.promise == promise["id"]):
                print(f"    - {m.name} ({m.file})")
        print(f"{len(promises)} promises, {len(mutations)} mutations")
        return 0

    jobs = max(1, min(args.jobs, len(chosen)))
    scratches = [scratch_copy(ROOT) for _ in range(jobs)]
    started = time.monotonic()
    try:
        check_imports(scratches[0])
        baseline = pytest(scratches[0], tuple(sorted({t for m in chosen for t in m.tests})))
        if baseline.returncode != 0:
            print(f"promises: the ledger's tests fail on the tree as it is; fix them first:\n{baseline.stdout[-3000:]}",
                  file=sys.stderr)
            return 1
        print(f"promises: {len(chosen)} mutations of {len({m.promise for m in chosen})} promises, {jobs} at a time "
              f"(baseline green in {time.monotonic() - started:.1f}s)", flush=True)
        free = list(scratches)

        def attempt(m: Mutation):
            scratch = free.pop()
            try:
                verdict, detail, seconds = try_mutation(scratch, m)
            finally:
                free.append(scratch)
            print(f"  {verdict.upper():<9} {seconds:5.1f}s  {m.label}  [{detail}]", flush=True)
            return m, verdict, detail

        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(attempt, chosen))
    finally:
        for scratch in scratches:
            shutil.rmtree(scratch, ignore_errors=True)
    bad = [(m, verdict, detail) for m, verdict, detail in results if verdict != "killed"]
    killed = len(results) - len(bad)
    for m, verdict, detail in bad:
        print(f"{verdict.upper()}: {m.label} ({m.file}): {detail}")
    print(f"{killed} of {len(results)} mutations killed in {time.monotonic() - started:.0f}s"
          + ("" if not bad else f"; {len(bad)} promise-breaking change(s) went unseen, named above"))
    print(f"promises: {killed} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
