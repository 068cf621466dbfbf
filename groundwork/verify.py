"""The verification pass: the pytest modules under checks/, run in-process with pytest-html.

Each check runs once per targeted host it applies to, over the run's own SSH connections, and carries its
evidence (every command with its exit status and output, secrets masked) into the HTML report and run.json.
The report also gets the run's metadata and change log, so one self-contained file serves the change board.
"""

from __future__ import annotations

import html
import inspect
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from groundwork.facts import Probe, on_own_stdin
from groundwork.inventory import HostModel
from groundwork.remote import CommandResult, Masker, Remote
from groundwork.report_html import (change_log_html, check_tally, evidence_html, evidence_section_html, glance_html,
                                    host_verification, provenance_html, readiness_html)
from groundwork.runner import describe_error


class RunUnderCheck(Protocol):
    """What the verification pass is handed of its run (session.RunSession is one): the hosts, their
    connections, secrets and masker, the run's metadata and record, its progress output."""

    nr: Any
    inventory: Any
    targets: list[HostModel]
    masker: Masker
    meta: Any
    record: Any
    progress: Any
    check_modules: list[str] | None
    secrets: dict[str, str]

    def end(self) -> None: ...

CHECKS_DIR = Path(__file__).parent / "checks"  # groundwork.checks, package data beside this module
MAX_PARALLEL = 64  # hosts connected to and gathered from at once; each is a thread waiting on its SSH channel


def in_pass(name: str, names: list[str] | None) -> bool:
    """Whether a pass of these modules (None: every one) runs module `name`."""
    return names is None or name in names


def check_modules(names: list[str] | None) -> list:
    """The check modules of a pass (None: every one), imported as pytest imports them (package groundwork.checks)."""
    import importlib

    files = sorted(CHECKS_DIR.glob("test_*.py"))
    return [importlib.import_module(f"groundwork.checks.{f.stem}") for f in files if in_pass(f.name, names)]


SESSION_KEY: "pytest.StashKey[CheckSession]" = pytest.StashKey()


@dataclass
class Evidence:
    command: str
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Look:
    """A command a check runs on a host, gathered for every host at once before the checks run.

    A check declares its looks with @reads. Wave 1 runs after wave 0 has finished on every host (a pull after
    the ops host's push)."""
    command: str
    stdin: bytes = b""  # a secret it needs, on stdin as when the check runs it itself
    wave: int = 0

    @classmethod
    def of(cls, item: "str | Probe | Look") -> "Look":
        if isinstance(item, Look):
            return item
        return cls(item.script if isinstance(item, Probe) else item)


def reads(*looks):
    """Declare what a check reads on its host, once: the gather runs it for every host before the checks, and the
    check runs the same declaration (its result is then taken from the gather). Each item is a command, a Look,
    a Probe, or a function of (host) or (host, session) returning one of those, a list of them, or None
    (nothing to read on that host)."""
    def declare(check):
        check.gw_reads = looks
        return check
    return declare


def acts(check):
    """A check that runs its commands as it goes (it applies something, waits for it, or reads what its own
    steps made): nothing is gathered for it, and no command of it counts as undeclared."""
    check.gw_acts = True
    return check


def declared_looks(check, host, session) -> list[Look]:
    """The looks a check declares with @reads, for one host."""
    looks: list[Look] = []
    for item in getattr(check, "gw_reads", ()):
        if callable(item) and not isinstance(item, Probe):
            item = item(host, session) if len(inspect.signature(item).parameters) == 2 else item(host)
        looks += [Look.of(i) for i in (item if isinstance(item, list) else [] if item is None else [item])]
    return looks


def check_groups(check, module) -> tuple[str, ...] | None:
    """The groups a check runs on: its own @pytest.mark.groups, else its module's GROUPS (None: every host)."""
    marks = [m for m in getattr(check, "pytestmark", []) if m.name == "groups"]
    return marks[0].args if marks else getattr(module, "GROUPS", None)


def module_checks(module) -> list:
    return [f for name, f in vars(module).items() if name.startswith("test_") and callable(f)]


EVIDENCE_MARK = "@@gw-look "


def looks_script(looks: list[Look]) -> str:
    """One script that runs every look in turn and prints, for each, its exit status, stdout and stderr (base64,
    so that no output can fake a mark). Each look reads exactly its own stdin bytes, and nothing else's."""
    parts = ['d=$(mktemp -d) || exit 1; trap \'rm -rf "$d"\' EXIT; ']
    for i, look in enumerate(looks):
        parts.append(f"{on_own_stdin(look.command, look.stdin)} >\"$d/o\" 2>\"$d/e\"; echo \"{EVIDENCE_MARK}{i} $?\"; "
                     "base64 -w0 \"$d/o\"; echo; base64 -w0 \"$d/e\"; echo; ")
    return "".join(parts)


def parse_looks(looks: list[Look], output: str, masker: Masker, duration: float) -> list[CommandResult | None]:
    """Each look's result; None for a look the output does not have (cut short: the check runs it itself)."""
    import base64

    results: list[CommandResult | None] = [None] * len(looks)
    lines = output.splitlines()
    for n, line in enumerate(lines):
        if not line.startswith(EVIDENCE_MARK) or n + 2 >= len(lines):
            continue
        index, _, rc = line[len(EVIDENCE_MARK):].partition(" ")
        try:
            i = int(index)
            out, err = (base64.b64decode(lines[n + k]).decode("utf-8", "replace") for k in (1, 2))
            results[i] = CommandResult(masker(looks[i].command), int(rc), masker(out), masker(err), duration)
        except (ValueError, IndexError):
            continue
    return results


class GatheredLooks:
    """The results gathered for one host, handed out in order: the first not yet used for that command and
    stdin, else the last one (a read two checks share)."""

    def __init__(self, looks: list[Look], results: list[CommandResult | None]):
        self._entries = [[look, result, False] for look, result in zip(looks, results) if result is not None]

    def take(self, command: str, stdin: bytes) -> CommandResult | None:
        matching = [e for e in self._entries if e[0].command == command and e[0].stdin == stdin]
        for entry in matching:
            if not entry[2]:
                entry[2] = True
                return entry[1]
        return matching[-1][1] if matching else None


class HostProbe:
    """What a check uses to look at its host; everything it runs becomes evidence."""

    def __init__(self, remote: Remote, evidence: list[Evidence], gathered: GatheredLooks | None = None,
                 declared: set[tuple[str, bytes]] | None = None, undeclared: list[str] | None = None,
                 warnings: list[str] | None = None, shown: list[str] | None = None):
        self._remote = remote
        self.evidence = evidence
        self._gathered = gathered
        self.warnings = warnings if warnings is not None else []  # what makes a passing check `warned`
        self.shown = shown if shown is not None else []  # tables a verb asks to see on the terminal
        # What the check declares with @reads: the one list the gather runs and the check reads (None: a check
        # that acts, or a look at another host). A command outside it still runs (the check stays right), and
        # is named in `undeclared`: the batch lost it, and the check's result says so (run.json, the terminal).
        self._declared = declared
        self.undeclared = undeclared if undeclared is not None else []

    def run(self, command: str, stdin: bytes = b"") -> CommandResult:
        """Run a command on the host (a secret goes on stdin, never in the command). A command the check
        declares with @reads was run for every host at once before the checks; its result is taken from there."""
        if self._declared is not None and (command, stdin) not in self._declared:
            self.undeclared.append(self._remote.masker(command))
        result = self._gathered.take(command, stdin) if self._gathered else None
        if result is None:
            result = self._remote.run(command, check=False, stdin=stdin)
        self.evidence.append(Evidence(result.command, result.rc, result.stdout, result.stderr))
        return result

    def record(self, command: str, rc: int, stdout: str, stderr: str = "") -> None:
        """Evidence of a look taken from this machine (a DNS query), beside the commands run on the host."""
        self.evidence.append(Evidence(command, rc, stdout, stderr))

    def warn(self, message: str) -> None:
        """Something due soon, not yet wrong: the check's outcome is `warned` if it passes (the run exits 0)."""
        self.warnings.append(message)

    def show(self, title: str, text: str) -> None:
        """A table for the reader (every certificate here): in the evidence, and on the terminal for a verb that
        shows its checks' tables (`groundwork certs`)."""
        self.record(title, 0, text)
        self.shown.append(f"{title}\n{text}")

    def fact(self, probe: Probe) -> Any:
        """Run one of groundwork's read-only probes (facts.py) and parse its output."""
        return probe.parse(self.run(probe.script).stdout)

    def look(self, look: Look) -> CommandResult:
        """Run a declared Look (its secret on stdin)."""
        return self.run(look.command, look.stdin)


@dataclass
class CheckResult:
    check: str  # module::function
    title: str  # the check's docstring, in the operator's words
    host: str
    outcome: str  # passed, warned (passed, with something due soon), failed, error, skipped
    duration: float
    message: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    # commands the check ran that it does not declare with @reads (run outside the gathered batch)
    undeclared: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # its tables (probe.show)


class CheckSession:
    """The pytest plugin that hands checks their hosts and connections and collects their results."""

    def __init__(self, run: RunUnderCheck):
        self.run = run
        self.nr = run.nr
        self.inventory = run.inventory
        self.targets = run.targets
        self.masker = run.masker
        self.meta = run.meta
        self.record = run.record
        self.progress = run.progress
        self.modules = run.check_modules
        self.secrets = run.secrets
        self.show_tables = getattr(run, "show_tables", False)  # print what checks show (groundwork certs)
        self.results: list[CheckResult] = []
        self._remotes: dict[str, Remote] = {}
        self._unreachable: dict[str, str] = {}
        self._gathered: dict[str, GatheredLooks] = {}
        self._declared: dict[tuple[str, str], set[tuple[str, bytes]]] = {}  # (host, "module::check") -> its looks

    # -- for checks/conftest.py -----------------------------------------------------------------------

    def probe_for(self, host: HostModel, evidence: list[Evidence], check: str = "",
                  undeclared: list[str] | None = None, warnings: list[str] | None = None,
                  shown: list[str] | None = None) -> HostProbe:
        """A probe of the host for one check ("module::check"; "" for a look at another host than the check's)."""
        if host.name not in self._remotes and host.name not in self._unreachable:
            self._connect(host)
        if host.name in self._unreachable:
            pytest.fail(self._unreachable[host.name], pytrace=False)
        return HostProbe(self._remotes[host.name], evidence, self._gathered.get(host.name),
                         self._declared.get((host.name, check)), undeclared, warnings, shown)

    def _connect(self, host: HostModel) -> None:
        try:
            connection = self.nr.inventory.hosts[host.name]
            remote = Remote.for_host(connection, self.nr.config, self.masker)
            remote.run("true")
            self._remotes[host.name] = remote
        except Exception as exc:  # noqa: BLE001 - the host's checks fail with this, the others go on
            self._unreachable[host.name] = self.masker(describe_error(exc, host, connection))

    def connect_all(self) -> None:
        """Open the hosts' connections in parallel (those the pipeline did not open already)."""
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(self.targets)))) as pool:
            list(pool.map(self._connect, self.targets))

    def gather_evidence(self) -> None:
        """Run every check's declared looks on every reachable host at once: one script per host and wave. A look
        two checks declare alike runs once (a shared read)."""
        looks: dict[str, list[Look]] = {h.name: [] for h in self.targets if h.name in self._remotes}
        for module in check_modules(self.modules):
            for check in module_checks(module):
                if getattr(check, "gw_acts", False):
                    continue
                groups = check_groups(check, module)
                for host in self.targets:
                    if host.name not in looks or not (groups is None or any(g in host.groups for g in groups)):
                        continue
                    try:
                        declared = declared_looks(check, host, self)
                    except Exception:  # noqa: BLE001 - nothing gathered for it: the check runs its own commands
                        continue
                    looks[host.name] += [lk for lk in declared if lk not in looks[host.name]]
                    self._declared[(host.name, f"{module.__name__}::{check.__name__}")] = {
                        (lk.command, lk.stdin) for lk in declared}
        results: dict[str, list[CommandResult | None]] = {name: [None] * len(ls) for name, ls in looks.items()}

        def run_wave(name: str, wave: int) -> None:
            indexes = [i for i, look in enumerate(looks[name]) if look.wave == wave]
            if not indexes:
                return
            batch = [looks[name][i] for i in indexes]
            try:
                done = self._remotes[name].run(looks_script(batch), stdin=b"".join(lk.stdin for lk in batch),
                                               check=False, what="gathering the checks' evidence")
            except Exception:  # noqa: BLE001 - not gathered: each check runs its own commands, and says what fails
                return
            for i, result in zip(indexes, parse_looks(batch, done.stdout, self.masker, done.duration / len(batch))):
                results[name][i] = result

        waves = sorted({look.wave for ls in looks.values() for look in ls})
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(looks)))) as pool:
            for wave in waves:
                list(pool.map(lambda name: run_wave(name, wave), looks))
        self._gathered = {name: GatheredLooks(looks[name], results[name]) for name in looks}

    # -- pytest hooks ---------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        from pytest_metadata.plugin import metadata_key
        config.stash[SESSION_KEY] = self
        config.option.tbstyle = "short"  # the check's own lines, not every fixture's repr (--tb is the terminal's)
        config.stash[metadata_key].clear()
        config.stash[metadata_key].update(self.meta.as_table())

    def pytest_collection_modifyitems(self, config, items):
        keep = [i for i in items if in_pass(i.path.name, self.modules)]
        dropped = [i for i in items if i not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        from pytest_metadata.plugin import metadata_key
        self.run.end()
        session.config.stash[metadata_key]["Ended (UTC)"] = self.meta.ended

    def pytest_html_report_title(self, report):
        report.title = f"groundwork {self.meta.runbook} — run {self.meta.run_id}"

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        results = [asdict(r) for r in self.results]
        verdict = verification_verdict(results, [h.name for h in self.targets])
        prefix.append(f"<p><b>{html.escape(verdict)}</b> Pipeline: {html.escape(self.record.outcome_line())}.</p>")
        prefix.append(provenance_html(self.meta))
        prefix.append(glance_html(results, [h.name for h in self.targets]))
        prefix.append(readiness_html(results))
        postfix.append(evidence_section_html(results))
        postfix.append(change_log_html(self.record))

    def pytest_html_results_table_header(self, cells):
        cells.insert(1, "<th>Host</th>")
        cells.insert(2, "<th>Check</th>")

    def pytest_html_results_table_row(self, report, cells):
        cells.insert(1, f"<td>{html.escape(getattr(report, 'gw_host', ''))}</td>")
        cells.insert(2, f"<td>{html.escape(getattr(report, 'gw_title', ''))}</td>")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = mask_report(outcome.get_result(), self.masker)
        host = item.callspec.params.get("host") if hasattr(item, "callspec") else None
        report.gw_host = host.name if isinstance(host, HostModel) else ""  # "" : no targeted host in its groups
        report.gw_title = (item.function.__doc__ or item.name).strip().splitlines()[0]
        evidence = getattr(item, "gw_evidence", [])
        report.gw_undeclared = list(getattr(item, "gw_undeclared", []))
        report.gw_warnings = [self.masker(w) for w in getattr(item, "gw_warnings", [])]
        report.gw_shown = [self.masker(t) for t in getattr(item, "gw_shown", [])]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            from pytest_html import extras
            report.extras = [*getattr(report, "extras", []), extras.html(evidence_html([asdict(e) for e in evidence]))]
            report.gw_evidence = list(evidence)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector):
        outcome = yield
        mask_report(outcome.get_result(), self.masker)

    def pytest_collectreport(self, report):
        """A check module that cannot be loaded fails the pass loudly, instead of running no checks."""
        if report.failed:
            message = str(report.longrepr).strip().splitlines()[-1]
            self.results.append(CheckResult(check=report.nodeid, title=f"load the checks of {report.nodeid}",
                                            host="", outcome="error", duration=0.0, message=message))
            self.progress.say(self.progress.paint(f"  FAIL  cannot load {report.nodeid}: {message}", "failed"))

    def pytest_runtest_logreport(self, report):
        if not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
            return
        outcome = report.outcome if report.when == "call" else ("error" if report.failed else "skipped")
        if outcome == "skipped" and not report.gw_host:
            return  # a check none of the targeted hosts is for
        message = ""
        if outcome == "passed" and report.gw_warnings:
            outcome, message = "warned", "; ".join(report.gw_warnings)
        elif report.failed:
            message = getattr(report, "gw_short", "") or "failed"
        elif report.skipped and isinstance(report.longrepr, tuple):  # (file, line, "Skipped: why")
            message = str(report.longrepr[2]).removeprefix("Skipped: ")
        result = CheckResult(check=report.nodeid.split("[")[0], title=report.gw_title, host=report.gw_host,
                             outcome=outcome, duration=report.duration, message=message,
                             evidence=getattr(report, "gw_evidence", []),
                             undeclared=getattr(report, "gw_undeclared", []), shown=report.gw_shown)
        self.results.append(result)
        if self.show_tables:
            for table in result.shown:
                self.progress.say(f"\n{result.host}: {table}")
        for command in result.undeclared:
            self.progress.say(f"  NOTE  {result.host:<12} {result.check} ran a command it does not declare "
                              f"(@reads), outside the gathered batch: {command}")
        if outcome != "passed":  # failures and warnings at once; passes are tallied per host at the end
            word, paint = {"skipped": ("SKIP", "skipped"), "warned": ("WARN", "changed")}.get(outcome,
                                                                                              ("FAIL", "failed"))
            line = f"  {word:<5} {result.host:<12} {result.title}"
            self.progress.say(self.progress.paint(line + (f"\n        {message}" if message else ""), paint))


def mask_report(report, masker: Masker):
    """Secrets masked in everything of a result that pytest-html (or anything after it) shows: the failure's
    text and traceback, a skip's reason, captured output. Done where the report is made, before any hook reads
    it, whichever plugin's hooks run first."""
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, "Skipped: why")
        path, line, why = report.longrepr
        report.longrepr = (path, line, masker(str(why)))
    elif report.longrepr is not None:
        report.gw_short = masker(_short_failure(report))
        report.longrepr = masker(str(report.longrepr))
    report.sections = [(title, masker(text)) for title, text in report.sections]
    return report


def _short_failure(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash else str(report.longrepr)
    return text.strip().splitlines()[0] if text.strip() else "failed"


def run_checks(session: CheckSession, folder: Path) -> list[dict]:
    """Run the checks, write the pytest-html report, and return the results as dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    session.progress.say(f"\n== verification on {len(session.targets)} host(s)")
    started = time.monotonic()
    session.connect_all()
    session.gather_evidence()
    args = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR),
            "-p", "no:terminal", "-p", "no:cacheprovider", f"--html={folder / 'report.html'}",
            "--self-contained-html"]
    if pytest.main(args, plugins=[session]) == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt  # pytest took the Ctrl-C and ended the session; the run is interrupted
    results = [asdict(r) for r in session.results]
    for host in session.targets:
        tally = check_tally(results, host.name)
        status = host_verification(tally)
        paint = {"ok": "ok", "failed": "failed", "unverified": "skipped"}.get(status, "ok")
        session.progress.say(f"  {host.name:<12} {session.progress.paint(status, paint):<10} "
                             f"{tally['passed']}/{tally['total']} checks passed"
                             + (f", {tally['warned']} warned" if tally["warned"] else "")
                             + (f", {tally['skipped']} skipped" if tally["skipped"] else ""))
    tally = check_tally(results)
    session.progress.say(f"{tally['passed']} check(s) passed, {tally['failed']} failed"
                         + (f", {tally['warned']} warned" if tally["warned"] else "")
                         + (f", {tally['skipped']} skipped" if tally["skipped"] else "")
                         + f" in {time.monotonic() - started:.1f}s")
    return results


def verification_verdict(results: list[dict], hosts: list[str]) -> str:
    """The sentence at the top of the report: what failed, what was not verified, what was skipped."""
    tally = check_tally(results)
    counts = (f"{tally['passed']} passed, {tally['failed']} failed, "
              + (f"{tally['warned']} warned, " if tally["warned"] else "") + f"{tally['skipped']} skipped")
    by_host = {h: host_verification(check_tally(results, h)) for h in hosts}
    failed = [h for h, s in by_host.items() if s == "failed"] + (
        ["(checks that could not load)"] if any(r["outcome"] == "error" and not r["host"] for r in results) else [])
    unverified = [h for h, s in by_host.items() if s == "unverified"]
    if failed:
        text = f"Verification FAILED on {', '.join(failed)} ({counts})."
    elif unverified:
        text = f"Verification INCOMPLETE: every check was skipped on {', '.join(unverified)} ({counts})."
    else:
        return f"Verification passed: {counts} on {len(hosts)} host(s)."
    return text + (f" Nothing verified on {', '.join(unverified)}." if failed and unverified else "")
