"""A skipped check is counted as skipped everywhere, and a host on which every check was skipped is not "ok"."""

from groundwork.cli import EXIT_FOR_OUTCOME
from groundwork.session import run_outcome
from groundwork.index import write_index
from groundwork.run_folder import write_run_folder
from groundwork.record import RunRecord
from groundwork.verify import verification_verdict
from tests.unit.test_report import meta, record


def check(host, outcome):
    return {"check": "test_x.py::test_y", "title": "y", "host": host, "outcome": outcome, "duration": 0.1,
            "message": "", "evidence": []}


def run_record() -> RunRecord:
    return record(dry_run=False)


def test_a_host_whose_every_check_was_skipped_makes_the_run_unverified_not_ok(tmp_path):
    checks = [check("hdss7-11", "passed"), check("hdss7-21", "skipped"), check("hdss7-21", "skipped")]
    r = run_record()
    r.entries = [e for e in r.entries if e.status != "changed"]  # nothing changed: it would be "ok"
    assert run_outcome(r, checks) == "unverified"
    assert verification_verdict(checks, ["hdss7-11", "hdss7-21"]) == (
        "Verification INCOMPLETE: every check was skipped on hdss7-21 (1 passed, 0 failed, 2 skipped).")
    checks = [check("hdss7-11", "passed"), check("hdss7-21", "passed"), check("hdss7-21", "skipped")]
    assert run_outcome(r, checks) == "ok"


def test_the_verdict_counts_skipped_checks_and_the_index_shows_them(tmp_path):
    checks = [check("hdss7-11", "passed"), check("hdss7-21", "passed"), check("hdss7-21", "skipped")]
    assert verification_verdict(checks, ["hdss7-11", "hdss7-21"]) == (
        "Verification passed: 2 passed, 0 failed, 1 skipped on 2 host(s).")
    failing = checks + [check("hdss7-21", "failed")]
    assert verification_verdict(failing, ["hdss7-11", "hdss7-21"]).startswith(
        "Verification FAILED on hdss7-21 (2 passed, 1 failed, 1 skipped)")
    r = run_record()
    write_run_folder(tmp_path / r.run_id, r, meta(r), checks, "ok")
    # passed, warned, failed, skipped
    assert '<td class="ok">ok</td><td class="num">2</td><td class="num">0</td><td class="num">0</td>' \
           '<td class="num">1</td>' in write_index(tmp_path).read_text()


def test_a_warning_passes_the_host_and_shows_in_the_verdict_the_grid_and_the_index(tmp_path):
    """A warned check (something due soon) is its own outcome: the host is ok, the run's outcome too (exit 0),
    and the verdict, the grid and the index show it."""
    from groundwork.report_html import check_tally, glance_html, host_verification

    checks = [check("hdss7-11", "passed"), check("hdss7-21", "warned")]
    checks[1]["message"] = "/opt/certs/etcd-peer.pem expires in 12 day(s)"
    assert host_verification(check_tally(checks, "hdss7-21")) == "ok"
    assert verification_verdict(checks, ["hdss7-11", "hdss7-21"]) == (
        "Verification passed: 1 passed, 0 failed, 1 warned, 0 skipped on 2 host(s).")
    r = run_record()
    r.entries = [e for e in r.entries if e.status != "changed"]
    assert run_outcome(r, checks) == "ok" and EXIT_FOR_OUTCOME.get("ok", 0) == 0
    grid = glance_html(checks, ["hdss7-11", "hdss7-21"])
    assert 'class="gw-cell gw-warned"' in grid and "<h2>Warnings</h2>" in grid and "expires in 12 day(s)" in grid
    write_run_folder(tmp_path / r.run_id, r, meta(r), checks, "ok")
    assert '<td class="ok">ok</td><td class="num">1</td><td class="num">1</td><td class="num">0</td>' \
           '<td class="num">0</td>' in write_index(tmp_path).read_text()


def test_unverified_exits_as_a_failed_verification():
    assert EXIT_FOR_OUTCOME["unverified"] == EXIT_FOR_OUTCOME["verification-failed"] == 5
