"""Locust traffic for the load gate (``conformance load``); see ``locustfile.py``.

Nothing here imports Locust at package import: the harness locates the
locustfile through this package and runs it in Locust's own processes.
"""
