"""Typed views of the profile's family sections, one module per section.

A module here declares ``KEY`` (the top-level profile key) and
``parse(profile, value, display)``, which gets the schema-validated value (or
``None`` when the profile omits the section) and returns a frozen dataclass
with defaults applied. ``load_profile`` calls every module, so a semantic
problem surfaces when the profile is loaded, never mid-run.
"""
