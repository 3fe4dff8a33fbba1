"""obsconform: check that an HTTP service's telemetry keeps its contract.

The public API is what ``__all__`` lists; modules starting with ``_`` are
private. Layering (see ARCHITECTURE.md): profile → stack → collectors →
checks (pure) → requirements → reports, with the CLI and the pytest plugin
as thin shells.
"""

from conformance import checks
from conformance._exceptions import (
    ConformanceError,
    Failure,
    HarnessError,
    LimitExceeded,
    ProfileError,
    ServiceStartError,
    StackError,
    UsageError,
    WaitTimeout,
)
from conformance._model import Finding, Level, Requirement, RequirementResult, Status
from conformance._profile import Endpoint, LogContract, Profile, load_profile
from conformance._requirements import all_requirements, get_requirement
from conformance.telemetry import HttpExchange, LogLine, OtlpLogRecord, Span, SpanEvent

__all__ = [
    "ConformanceError",
    "Endpoint",
    "Failure",
    "Finding",
    "HarnessError",
    "HttpExchange",
    "Level",
    "LimitExceeded",
    "LogContract",
    "LogLine",
    "OtlpLogRecord",
    "Profile",
    "ProfileError",
    "Requirement",
    "RequirementResult",
    "ServiceStartError",
    "Span",
    "SpanEvent",
    "StackError",
    "Status",
    "UsageError",
    "WaitTimeout",
    "all_requirements",
    "checks",
    "get_requirement",
    "load_profile",
]
