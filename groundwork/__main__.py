"""`python -m groundwork VERB`: the same as the `groundwork` command."""

import sys

from groundwork.commands import main

sys.exit(main())
