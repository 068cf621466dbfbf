"""The stages, one module each, and the pipeline's order.

A new stage is a module exposing STAGE (a groundwork.stages.Stage) and one line in PIPELINE; the runner
needs no change.
"""

from tasks import host_prep

PIPELINE = [
    host_prep.STAGE,
]
