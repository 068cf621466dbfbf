"""The stages, one module each (groundwork.tasks); their order is pipeline.py's.

This package's __init__ imports nothing: a stage module importing another (`from groundwork.tasks import ca`) then never
loads the whole pipeline, and the import graph has no cycle.
"""
