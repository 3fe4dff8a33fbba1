"""Extra ``conformance`` subcommands, one module each.

A module here defines ``register(subparsers)``, which adds its parser and sets
``func=<callable(args) -> int>`` as the parser default. ``conformance.cli``
discovers the modules, so a new command never edits the CLI's core.
"""
