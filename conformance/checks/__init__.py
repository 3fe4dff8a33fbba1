"""Pure checks: telemetry in, findings out; no I/O, no pytest, no stack.

One module per requirement family; importing a module declares its
requirements (see ``conformance._requirements``).
"""
