"""Render the files written on hosts from the jinja2 templates under templates/."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"  # package data (templates/ in the repository)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Compiling the ~50 templates costs a third of a second of every run's CPU, before the first gather can
    # start. Jinja keeps the compiled code in a folder of this user's (mode 0700, checked) and compiles a
    # template again when its source changes; where no such folder can be had, each run compiles.
    try:
        return jinja2.FileSystemBytecodeCache()
    except (RuntimeError, OSError):
        return None


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # StrictUndefined: a misspelt variable is an error, not an empty string in a config file.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False, bytecode_cache=_bytecode_cache())


def render(template: str, **values) -> bytes:
    return _environment().get_template(template).render(**values).encode()
