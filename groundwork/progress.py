"""What the operator sees while a run works: a line per host as its stage ends (diffs under it in a dry run or
with --diff), and while a step runs, which host is doing what and for how long.

On a terminal the running steps are a live table under the finished lines (rich); in a log or CI, where a
redrawn table would be noise, a plain line says so for each step that has been running for `heartbeat` seconds,
and again every `heartbeat` seconds after that.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from groundwork.inventory import HostModel
from groundwork.record import HostStageRecord, RunRecord
from groundwork.stages import Stage

HEARTBEAT = 15.0  # seconds a step runs before a plain-text log says it is still running


@dataclass
class Step:
    stage: str
    what: str
    since: float  # when the host's stage started (monotonic)
    step_since: float  # when this step started
    said: float = 0.0  # when a plain line last said it is running


class Progress:
    """Thread safe: every host's task reports to the same Progress."""

    def __init__(self, record: RunRecord, show_diff: bool, out=None, verbose: bool = False,
                 terminal: bool | None = None, heartbeat: float = HEARTBEAT):
        self.record = record
        self.show_diff = show_diff
        self.verbose = verbose  # each stage's Nornir results in full, after its progress lines
        self.out = out or sys.stdout
        self.terminal = self.out.isatty() if terminal is None else terminal
        self.colour = self.terminal
        self.heartbeat = heartbeat
        self.lock = threading.RLock()
        self.running: dict[str, Step] = {}  # host -> what it is doing now
        self.with_stage = False  # name the stage in each host's line (stages overlap when run as a graph)
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- finished lines ---------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        with self.lock:
            if self._live is not None:
                self._live.console.print(Text.from_ansi(text), soft_wrap=True)
            else:
                print(text, file=self.out, flush=True)

    def paint(self, text: str, status: str) -> str:
        codes = {"changed": "33", "failed": "31;1", "ok": "32", "skipped": "36"}
        return f"\033[{codes[status]}m{text}\033[0m" if self.colour and status in codes else text

    def stage_started(self, stage: Stage, hosts: list[HostModel], skipped: list[str]) -> None:
        self.say(f"\n== {stage.name} ({stage.title}) on {len(hosts)} host(s): {' '.join(h.name for h in hosts)}")
        for name in skipped:
            self.say(f"  {name:<12} {self.paint('skipped', 'skipped'):<8} failed in an earlier stage")

    def host_done(self, entry: HostStageRecord) -> None:
        with self.lock:
            self.running.pop(entry.host, None)
        report = entry.report
        what = entry.error or (", ".join(c.summary for c in report.changes) if report and report.changes
                               else "; ".join(report.notes if report else []) or "no change")
        stage = f"{entry.stage:<17} " if self.with_stage else ""
        lines = [f"  {entry.host:<12} {stage}{self.paint(entry.status, entry.status):<8} {entry.duration:5.1f}s  {what}"]
        if report and report.changes and (self.show_diff or self.record.dry_run):
            lines += ["      " + line for c in report.changes for line in c.diff.rstrip("\n").splitlines()]
        self.say("\n".join(lines))

    # -- steps under way --------------------------------------------------------------------------------------

    def host_started(self, host: str, stage: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.running[host] = Step(stage, "connecting", now, now)

    def doing(self, host: str, what: str) -> None:
        """A host's stage moved on to another step (a command, a file, the gather)."""
        with self.lock:
            step = self.running.get(host)
            if step is not None:
                step.what, step.step_since, step.said = what, time.monotonic(), 0.0

    def start(self) -> None:
        """The display of running steps, for the stages of a run (stop() ends it)."""
        self._stop.clear()
        if self.terminal and not self.verbose:  # --verbose prints Nornir's results between stages: plain lines
            console = Console(file=self.out, force_terminal=True)
            self._live = Live(self._table(), console=console, refresh_per_second=4, transient=True,
                              redirect_stdout=False, redirect_stderr=False, get_renderable=self._table)
            self._live.start()
        else:
            self._ticker = threading.Thread(target=self._tick, name="groundwork-progress", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        with self.lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self.lock:
            steps = sorted(self.running.items())
        for host, step in steps:
            table.add_row(Text(host, style="bold"), step.stage, f"{now - step.since:5.1f}s",
                          Text(_one_line(step.what), overflow="ellipsis", no_wrap=True))
        return table

    def _tick(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat / 4)):
            now = time.monotonic()
            with self.lock:
                due = [(host, step) for host, step in sorted(self.running.items())
                       if now - max(step.step_since, step.said) >= self.heartbeat]
                for _, step in due:
                    step.said = now
            for host, step in due:
                self.say(f"  {host:<12} {'...':<8} {now - step.since:5.1f}s  {step.stage}: still "
                         f"{_one_line(step.what)} ({now - step.step_since:.0f}s so far)")

    # -- the end of the stages --------------------------------------------------------------------------------

    def nornir_results(self, results) -> None:
        """--verbose: a stage's Nornir results per host as nornir-utils prints them (diffs, then notes and every
        command with its exit status)."""
        import colorama
        from nornir_utils.plugins.functions import print_result

        # Importing print_result wraps stdout for good (a colour reset after every print): only while it prints,
        # and without colours when the output is not a terminal.
        colorama.deinit()
        with self.lock:
            colorama.init(autoreset=True, strip=not self.out.isatty())
            try:
                print_result(results, vars=["diff", "transcript"])
            finally:
                colorama.deinit()

    def recap(self) -> None:
        r = self.record
        self.say(f"\nRECAP{' (dry run: nothing was changed)' if r.dry_run else ''}")
        self.say(f"  {'host':<12} {'ok':>4} {'changed':>8} {'failed':>7} {'skipped':>8}")
        for host in r.targets:
            c = r.counts(host)
            self.say(f"  {host:<12} {c['ok']:>4} {c['changed']:>8} {c['failed']:>7} {c['skipped']:>8}")
        self.say(r.outcome_line())


def _one_line(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"
