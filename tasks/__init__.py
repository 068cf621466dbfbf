"""The stages, one module each; their order is tasks/pipeline.py's.

This package's __init__ imports nothing: a stage module importing another (`from tasks import ca`) then never
loads the whole pipeline, and the import graph has no cycle.
"""
