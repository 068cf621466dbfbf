"""The promise ledger and README's "Safety promises" name the same promises, and every mutation in the ledger
can be applied as written (its text stands exactly once in its file)."""

import re

import yaml

from promises.__main__ import LEDGER, load_ledger
from tests.conftest import PROJECT


def readme_promises() -> list[str]:
    text = (PROJECT / "README.md").read_text()
    section = text.split("## Safety promises", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)


def test_readme_and_ledger_name_the_same_promises():
    ledger = [p["id"] for p in yaml.safe_load(LEDGER.read_text())]
    assert readme_promises() == ledger


def test_every_mutation_applies_as_written_and_there_are_enough_to_mean_something():
    promises, mutations = load_ledger()
    assert all(any(m.promise == p["id"] for m in mutations) for p in promises)
    assert len(mutations) >= 25
    assert len({(m.file, m.find) for m in mutations}) == len(mutations)  # no mutation listed twice
