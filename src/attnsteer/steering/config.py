"""`SteeringConfig`: how strongly and in which direction steered heads are pushed (PASTA, InstABoost);
`SpotlightTarget`: the share of attention Spotlight steers each query to; `RowSteering`: what one batch
row gets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from attnsteer.errors import SteeringConfigError
from attnsteer.heads.head_config import HeadConfig

SteeringMode = Literal["exclude", "include"]
STEERING_MODES: tuple[str, ...] = ("exclude", "include")
Granularity = Literal["layer", "head"]
GRANULARITIES: tuple[str, ...] = ("layer", "head")


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
class SpotlightTarget:
    """Spotlight's knobs (arXiv 2505.12025): steer attention to a target share on the emphasised span.

    target: the share p in (0, 1) of attention the span should receive; a query (or layer) already at
        or above it is left alone.
    granularity: "layer" (the reference code's semantics: per batch row, the span's share averaged
        over a layer's heads and this forward's queries; when below p, log(p / share) is added to the
        span's scores on every head and query) or "head" (each head and query brought exactly to p).
        "head" is causal (position i depends on tokens <= i only), so it can be prefix-cached; "layer"
        averages over the queries of one forward pass, so a prompt prefilled in chunks reads differently.
    """

    target: float
    granularity: Granularity

    def __post_init__(self) -> None:
        target = self.target
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) \
                or not 0.0 < target < 1.0:
            raise SteeringConfigError(f"target must be a share of attention in (0, 1) (e.g. 0.3: the span gets "
                                      f"at least 30% of the attention), got {target!r}")
        if self.granularity not in GRANULARITIES:
            raise SteeringConfigError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")


@dataclass(frozen=True)
class RowSteering:
    """How one batch row is steered: a static bias (the heads and the `SteeringConfig` they get: PASTA,
    InstABoost) and/or a dynamic one (`spotlight`: every head of every layer steered to a target share).

    A batch may mix rows steered differently and rows not steered at all (None); see
    `attnsteer.steering.prepare_state`.
    """

    heads: HeadConfig
    config: SteeringConfig = SteeringConfig()
    spotlight: SpotlightTarget | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.heads, HeadConfig):
            raise SteeringConfigError(f"heads must be a HeadConfig (see HeadConfig.parse), got {self.heads!r}")
        if not isinstance(self.config, SteeringConfig):
            raise SteeringConfigError(f"config must be a SteeringConfig, got {self.config!r}")
        if self.spotlight is not None and not isinstance(self.spotlight, SpotlightTarget):
            raise SteeringConfigError(f"spotlight must be a SpotlightTarget or None, got {self.spotlight!r}")
