"""groundwork as an operator installs it: `pip install .` (not editable) into a fresh virtual environment, then the
`groundwork` command from a folder that holds only config.yaml and inventory/, never the checkout."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with groundwork built from this checkout as a wheel and installed as a normal package."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(PROJECT)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return venv


def groundwork(venv, project, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GROUNDWORK_CONFIG")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run(["groundwork", *args], cwd=project, env=env, capture_output=True, text=True, timeout=900)


def test_the_installed_command_converges_the_lab_from_a_folder_with_only_config_and_inventory(lab, installed,
                                                                                            tmp_path):
    venv = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import groundwork, groundwork.tasks.dns as d, "
                            "groundwork.render as r; print(groundwork.__file__, d.__file__, r.TEMPLATES)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where  # the wheel's code and templates, not the checkout's
    for top in ("tasks", "checks", "lab"):  # one namespace: nothing else top-level from this distribution
        assert not list((venv / "lib").glob(f"python3*/site-packages/{top}")), top

    project = tmp_path / "operator"
    project.mkdir()
    shutil.copy(PROJECT / "config.yaml", project / "config.yaml")
    shutil.copytree(PROJECT / "inventory", project / "inventory")

    run = groundwork(venv, project, "run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    verified = groundwork(venv, project, "verify")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]

    # The run folders went to the operator's folder, not the install location; the verification ran checks
    folders = sorted(p.name for p in (project / "reports").iterdir() if p.is_dir())
    assert [f.split("-", 1)[1] for f in folders] == ["full", "verify"], folders
    record = json.loads((project / "reports" / folders[1] / "run.json").read_text())
    outcomes = [c["outcome"] for c in record["checks"]]
    assert "failed" not in outcomes and "error" not in outcomes and outcomes.count("passed") > 20, outcomes
    assert sorted(os.listdir(project)) == ["config.yaml", "inventory", "reports"]

    # A verb's bad input is refused as the runbooks refuse it
    assert groundwork(venv, project, "run", "no_such_stage").returncode == 2
    assert groundwork(venv, project, "frobnicate").returncode == 2
