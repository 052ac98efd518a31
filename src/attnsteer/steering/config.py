"""`SteeringConfig`: how strongly and in which direction steered heads are pushed; `RowSteering`:
which heads of one batch row get it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from attnsteer.errors import SteeringConfigError
from attnsteer.heads.head_config import HeadConfig

SteeringMode = Literal["exclude", "include"]
STEERING_MODES: tuple[str, ...] = ("exclude", "include")


@dataclass(frozen=True)
class SteeringConfig:
    """PASTA's two knobs.

    alpha: the factor (0 < alpha <= 1) by which attention to non-emphasised prompt tokens is
        multiplied before renormalising. alpha = 1 leaves the model unchanged; the paper uses 0.01.
    mode: "exclude" adds log(alpha) to the scores of prompt keys outside the emphasised spans (the
        paper's default); "include" adds -log(alpha) to the emphasised keys instead. Both give the
        same attention after softmax over the prompt; they differ only in floating-point range and
        in how generated tokens (never biased) compare with the prompt.
    """

    alpha: float = 0.01
    mode: SteeringMode = "exclude"

    def __post_init__(self) -> None:
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
            raise SteeringConfigError(f"alpha must be a finite number in (0, 1], got {alpha!r}")
        if not 0.0 < alpha <= 1.0:
            raise SteeringConfigError(
                f"alpha must be in (0, 1] (the factor applied to non-emphasised attention; "
                f"0.01 is the paper's default), got {alpha!r}"
            )
        if self.mode not in STEERING_MODES:
            raise SteeringConfigError(f"mode must be one of {STEERING_MODES}, got {self.mode!r}")

    @property
    def outside_bias(self) -> float:
        """Score bias for prompt keys outside the emphasised spans (log units)."""
        return math.log(self.alpha) if self.mode == "exclude" else 0.0

    @property
    def inside_bias(self) -> float:
        """Score bias for emphasised prompt keys (log units)."""
        return -math.log(self.alpha) if self.mode == "include" else 0.0

    def to_dict(self) -> dict[str, object]:
        """`{"alpha": ..., "mode": ...}` (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SteeringConfig:
        """The inverse of `to_dict`; unknown fields are an error."""
        unknown = set(data) - {"alpha", "mode"}
        if unknown:
            raise SteeringConfigError(f"unknown SteeringConfig fields {sorted(unknown)}; allowed: alpha, mode")
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RowSteering:
    """How one batch row is steered: the heads to steer and the `SteeringConfig` they get.

    A batch may mix rows steered differently and rows not steered at all (None); see
    `attnsteer.steering.prepare_state`.
    """

    heads: HeadConfig
    config: SteeringConfig = SteeringConfig()

    def __post_init__(self) -> None:
        if not isinstance(self.heads, HeadConfig):
            raise SteeringConfigError(f"heads must be a HeadConfig (see HeadConfig.parse), got {self.heads!r}")
        if not isinstance(self.config, SteeringConfig):
            raise SteeringConfigError(f"config must be a SteeringConfig, got {self.config!r}")
