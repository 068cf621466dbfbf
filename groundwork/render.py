"""Render the files written on hosts from the jinja2 templates under templates/."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"  # package data (templates/ in the repository)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # StrictUndefined: a misspelt variable is an error, not an empty string in a config file.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def render(template: str, **values) -> bytes:
    return _environment().get_template(template).render(**values).encode()
