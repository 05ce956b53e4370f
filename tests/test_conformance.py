"""The registry is the test matrix: every check of ``lra.check.conformance`` on every method.

Which checks apply follows from each class's flags (``exact``, ``complexity``,
``supports_mask``, ...), never from method names, so a new registered method is covered
with no edit here.
"""

from __future__ import annotations

import pytest

from lra.check.conformance import CHECKS, PAD_TOL
from lra.check.inputs import one_thread
from models import REGISTRY


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


NAMES = sorted(REGISTRY)


def _marks(name: str, check: str) -> list:
    return [pytest.mark.slow] if CHECKS[check].slow else []


MATRIX = [
    pytest.param(name, check, id=f"{name}-{check}", marks=_marks(name, check))
    for name in NAMES
    for check, spec in CHECKS.items()
    if spec.applies(REGISTRY[name])
]


@pytest.mark.parametrize(("name", "check"), MATRIX)
def test_conformance(name, check):
    result = CHECKS[check](REGISTRY[name])
    assert result.applicable and result.passed, result.describe()


@pytest.mark.parametrize("name", NAMES)
def test_padding_changes_real_outputs_exactly_for_length_dependent_methods(name):
    """The flag is proven both ways: leaks for ``length_dependent`` methods, none otherwise."""
    leak = CHECKS["padding"](REGISTRY[name]).measured
    assert (leak > PAD_TOL) == REGISTRY[name].length_dependent, (name, leak)


def test_the_matrix_covers_every_check_and_method():
    checked = {check for _, check in (p.values for p in MATRIX)}
    assert checked == set(CHECKS)
    assert {name for name, _ in (p.values for p in MATRIX)} == set(NAMES)
    assert REGISTRY["bigbird"].length_dependent  # at least one method proves the leak side
    assert any(not REGISTRY[n].subquadratic() for n in NAMES)


def test_not_applicable_checks_say_so():
    result = CHECKS["exact"](REGISTRY["local"])
    assert not result.applicable and result.passed and "n/a" in result.describe()
