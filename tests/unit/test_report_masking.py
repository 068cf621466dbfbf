"""A failing check's text in report.html is masked whatever path it takes there: an assertion's message and
traceback, a skip's reason, captured output, a check module that cannot load."""

import pytest

from groundwork.remote import Masker
from groundwork.verify import CheckSession

SECRET = "s3cret-Value-42"


class OnlyMasking:
    """The verification plugin's own hooks that make reports, without the rest of a run."""

    masker = Masker([SECRET])
    pytest_runtest_makereport = CheckSession.pytest_runtest_makereport
    if hasattr(CheckSession, "pytest_make_collect_report"):
        pytest_make_collect_report = CheckSession.pytest_make_collect_report


def test_no_secret_reaches_report_html_from_a_failing_check(tmp_path):
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_leaky.py").write_text(f'''
import pytest
PASSWORD = "{SECRET}"

def test_assertion_names_it():
    assert PASSWORD == "wanted", f"login refused for admin:{{PASSWORD}}"

def test_prints_it():
    print("stdout says", PASSWORD)
    raise RuntimeError("boom " + PASSWORD)

def test_skips_with_it():
    pytest.skip("not now: " + PASSWORD)
''')
    (checks / "test_broken.py").write_text(f'raise ImportError("cannot load with {SECRET}")\n')
    report = tmp_path / "report.html"
    code = pytest.main([str(checks), "-p", "no:cacheprovider", "-q", "--continue-on-collection-errors", f"--html={report}", "--self-contained-html",
                        "--rootdir", str(checks)], plugins=[OnlyMasking()])
    assert code != pytest.ExitCode.OK
    text = report.read_text()
    assert "test_assertion_names_it" in text and "********" in text
    assert SECRET not in text
