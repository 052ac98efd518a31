from __future__ import annotations

import math

import pytest

from attnsteer import SteeringConfig
from attnsteer.errors import SteeringConfigError


@pytest.mark.parametrize("alpha", [0, -0.5, 1.5, float("nan"), float("inf"), "0.1", True])
def test_alpha_outside_zero_one_is_rejected(alpha):
    with pytest.raises(SteeringConfigError, match=r"alpha must be"):
        SteeringConfig(alpha=alpha)


def test_mode_must_be_known():
    with pytest.raises(SteeringConfigError, match=r"mode must be one of \('exclude', 'include'\), got 'both'"):
        SteeringConfig(mode="both")


def test_biases():
    assert SteeringConfig(0.01).outside_bias == pytest.approx(math.log(0.01))
    assert SteeringConfig(0.01).inside_bias == 0.0
    assert SteeringConfig(0.01, "include").inside_bias == pytest.approx(-math.log(0.01))
    assert SteeringConfig.from_dict({"alpha": 0.5, "mode": "include"}) == SteeringConfig(0.5, "include")
    with pytest.raises(SteeringConfigError, match="unknown SteeringConfig fields"):
        SteeringConfig.from_dict({"beta": 1})
