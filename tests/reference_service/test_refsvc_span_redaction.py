"""The SERVER span keeps PII out of its request attributes (URL, path, User-Agent).

The PII suite sends canaries in query strings, path parameters and the
User-Agent, which the HTTP instrumentation records when the span starts; the
reference service's ``server_request_hook`` drops the query string and
redacts the rest as its logs do.
"""

from __future__ import annotations

from _refsvc_support import InProcessService, ServiceFactory
from reference_service import breakage as brk

EMAIL = "maya.okafor.k3v9qz@example.net"
PHONE = "+12025550147"


def _server_attributes(service: InProcessService) -> dict[str, object]:
    (span,) = service.server_spans()
    return dict(span.attributes or {})


def test_query_string_is_dropped_and_path_and_user_agent_redacted(service: InProcessService) -> None:
    service.get(
        f"/users/{EMAIL}",
        params={"email": EMAIL, "phone": PHONE},
        headers={"User-Agent": f"bot/1.0 (contact {EMAIL}; tel {PHONE})"},
    )

    attributes = _server_attributes(service)
    text = repr(attributes)
    assert EMAIL not in text and PHONE not in text and "%40" not in text
    assert attributes["http.target"] == "/users/[REDACTED_EMAIL]"
    assert attributes["http.url"] == "http://testserver/users/[REDACTED_EMAIL]"
    assert attributes["http.user_agent"] == "bot/1.0 (contact [REDACTED_EMAIL]; tel [REDACTED_PHONE])"
    assert attributes["http.route"] == "/users/{user_id}"


def test_ordinary_request_attributes_are_untouched(service: InProcessService) -> None:
    service.get("/users/42", headers={"User-Agent": "obsconform-probe/0b9410eb-ace4-4e3d-a7c5-53d9a0e64592"})

    attributes = _server_attributes(service)
    assert attributes["http.target"] == "/users/42"
    assert attributes["http.url"] == "http://testserver/users/42"
    assert attributes["http.user_agent"] == "obsconform-probe/0b9410eb-ace4-4e3d-a7c5-53d9a0e64592"


def test_attributes_the_application_sets_are_not_rewritten(make_service: ServiceFactory) -> None:
    """``email-span-attribute`` sets ``user.email`` in the handler, after the hook ran."""
    service = make_service(breaks=[brk.EMAIL_SPAN_ATTRIBUTE])
    service.post("/auth/login", json={"email": EMAIL, "password": "x"})

    assert _server_attributes(service)["user.email"] == EMAIL
