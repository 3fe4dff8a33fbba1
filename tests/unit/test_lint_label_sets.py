"""The lint's fast duplicate-series and label-name computation equals its plain definition."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.samples import Sample

from conformance.checks import _promlint
from conformance.checks._exposition import series_key
from conformance.checks._promlint import _label_sets

_LABELS = st.dictionaries(
    st.sampled_from(["a", "b", "le", "x"]), st.sampled_from(["1", "2", "+Inf"]), max_size=3
)


def _sample(name: str, labels: dict[str, str], reverse: bool) -> Sample:
    return Sample(name, dict(reversed(labels.items())) if reverse else labels, 1)


_SAMPLES = st.lists(
    st.builds(_sample, st.sampled_from(["m", "m_bucket", "m_sum"]), _LABELS, st.booleans()), max_size=8
)


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=_SAMPLES)
def test_label_sets_match_the_plain_definition(samples: list[Sample]) -> None:
    names, duplicated = _label_sets(samples)
    assert names == {name for sample in samples for name in sample.labels}
    assert duplicated == (len({series_key(s) for s in samples}) != len(samples))


def test_one_name_one_order_and_a_repeat_is_a_duplicate() -> None:
    assert _label_sets([Sample("m", {"a": "1"}, 1), Sample("m", {"a": "1"}, 2)]) == ({"a"}, True)
    assert _label_sets([Sample("m", {"a": "1"}, 1), Sample("m", {"b": "1"}, 2)]) == ({"a", "b"}, False)
    assert _label_sets([Sample("m", {"a": "1", "b": "2"}, 1), Sample("m", {"b": "2", "a": "1"}, 1)])[1]


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=_SAMPLES)
def test_equal_hashes_of_distinct_series_are_no_duplicate(samples: list[Sample]) -> None:
    # Every key hashes alike: the keys themselves must be compared (a collision is not a duplicate).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_promlint, "hash", lambda key: 0, raising=False)
        names, duplicated = _label_sets(samples)
    assert names == {name for sample in samples for name in sample.labels}
    assert duplicated == (len({series_key(s) for s in samples}) != len(samples))
