"""The conformance suites: thin pytest modules that gather, check, assert.

Installed as ``conformance.suites``; each test decides one requirement.
"""
