"""The README's unit-only command selects no end-to-end test."""

import subprocess
import sys

from tests.conftest import PROJECT


def collected(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120)
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_not_lab_selects_no_end_to_end_test_and_lab_selects_only_them():
    unit_only = collected("-m", "not lab")
    assert unit_only and not [t for t in unit_only if t.startswith("tests/e2e/")]
    lab_only = collected("-m", "lab")
    assert lab_only and all(t.startswith("tests/e2e/") for t in lab_only)
