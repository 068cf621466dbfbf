"""Lets `python runbooks/NAME.py` import the project from a checkout that was not pip-installed.

It also takes runbooks/ itself off sys.path: a runbook named like a library (dns.py) would hide it.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
