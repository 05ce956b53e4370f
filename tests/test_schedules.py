"""Learning-rate schedules against the LRA formulas."""

import math

import pytest

from lra.run.schedules import lr_at


def test_rsqrt_matches_lra_listops_numbers():
    # LRA_PROTOCOL.md: ListOps peaks at 1.58e-3 at step 1000 and ends at 7.1e-4 at step 5000.
    assert lr_at(1000, "rsqrt", 0.05, 1000, 5000) == pytest.approx(0.05 / math.sqrt(1000))
    assert lr_at(1000, "rsqrt", 0.05, 1000, 5000) == pytest.approx(1.58e-3, rel=1e-2)
    assert lr_at(5000, "rsqrt", 0.05, 1000, 5000) == pytest.approx(7.1e-4, rel=1e-2)
    assert lr_at(500, "rsqrt", 0.05, 1000, 5000) == pytest.approx(0.5 * 0.05 / math.sqrt(1000))


def test_cosine_warms_up_then_decays_to_zero():
    assert lr_at(50, "cosine", 1e-3, 100, 1000) == pytest.approx(5e-4)
    assert lr_at(100, "cosine", 1e-3, 100, 1000) == pytest.approx(1e-3)
    assert lr_at(550, "cosine", 1e-3, 100, 1000) == pytest.approx(5e-4)
    assert lr_at(1000, "cosine", 1e-3, 100, 1000) == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_names_the_valid_ones():
    with pytest.raises(ValueError, match="rsqrt"):
        lr_at(1, "linear", 1.0, 1, 10)
