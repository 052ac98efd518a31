"""Steering methods by name, each a small frozen class that turns its parameters into the `RowSteering` the
attention functions apply. The one registry the library, CLI, server, evaluation and lm-eval adapter use.

| name         | what it does                                                              | parameters          |
|--------------|---------------------------------------------------------------------------|---------------------|
| `pasta`      | PASTA (arXiv 2311.02262): on the selected heads, attention to prompt     | heads, alpha, mode  |
|              | tokens outside the emphasis x alpha, renormalised                          |                     |
| `instaboost` | InstABoost (Guardieiro et al., 2025): attention to emphasised tokens     | boost               |
|              | x boost on every head of every layer, renormalised (no head profiling)    |                     |
| `spotlight`  | Spotlight (arXiv 2505.12025): the span's share of attention raised to a   | target, granularity |
|              | target where it is below it, every layer (no head profiling)              |                     |

`make_method(name, model, **parameters)` builds one (`check_method` checks a name and parameters before any
model loads: the CLI and the lm-eval adapter); `default_method(model)` is what `Steerer(model, tok)`
uses when no method is named: PASTA with the model's head set when there is one (one a user installed with
`attnsteer profile --install`, else a shipped one), else `PROFILING_FREE_DEFAULT` (a logged choice, chosen by
measurement: docs/results.md).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from attnsteer.errors import SteeringConfigError, UnknownSteeringMethodError
from attnsteer.heads.head_config import HeadConfig
from attnsteer.registry import Registry
from attnsteer.steering.config import Granularity, RowSteering, SpotlightTarget, SteeringConfig, SteeringMode

logger = logging.getLogger(__name__)


class SteeringMethod(ABC):
    """One way to steer attention towards the emphasised tokens (see the module's table)."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, model: Any, **parameters: Any) -> SteeringMethod:
        """The method for `model` (head sets are resolved and checked against its shape)."""

    @abstractmethod
    def row(self) -> RowSteering:
        """What the attention functions apply to every row this method steers."""

    def parameters(self) -> dict[str, Any]:
        """The user-facing parameters and their values (what `build` takes back)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.init and item.repr}  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """`{"method": name, **parameters}`, JSON-ready (heads as their "L.H,..." string)."""
        values = {key: str(value) if isinstance(value, HeadConfig) else value
                  for key, value in self.parameters().items()}
        return {"method": self.name, **values}

    def describe(self) -> str:
        """One line for logs and tables, e.g. "instaboost (boost 5.0)"."""
        values = ", ".join(f"{key} {value}" for key, value in self.to_dict().items() if key != "method")
        return f"{self.name} ({values})"


_METHODS: Registry[type[SteeringMethod]] = Registry("steering method", UnknownSteeringMethodError)


def register_method(method: type[SteeringMethod]) -> type[SteeringMethod]:
    """Class decorator: make `method` available by its `name`."""
    _METHODS.register(method.name, method)
    return method


def steering_method_names() -> list[str]:
    """The registered steering methods, in registration order."""
    return _METHODS.names()


def method_class(name: str) -> type[SteeringMethod]:
    """The class registered as `name`; an unknown name raises with the allowed names and the closest one."""
    return _METHODS.get(name)


def method_parameters(name: str) -> tuple[str, ...]:
    """The parameters steering method `name` takes."""
    return tuple(item.name for item in fields(method_class(name)) if item.init and item.repr)  # type: ignore[arg-type]


def method_defaults(name: str) -> dict[str, Any]:
    """{parameter: default} of steering method `name` (None where the model decides: PASTA's shipped heads)."""
    return {item.name: None if item.default is MISSING else item.default
            for item in fields(method_class(name)) if item.init and item.repr}  # type: ignore[arg-type]


def method_for_parameters(parameters: Iterable[str], spell: Callable[[str], str] = str) -> str:
    """The method that takes all of `parameters` (what they choose when no method is named); parameters of
    several methods are an error. spell: how messages name a parameter (the CLI's `--boost`, say)."""
    given = list(parameters)
    names = steering_method_names()
    owners = [name for name in names if set(given) <= set(method_parameters(name))]
    if owners:
        return owners[0]
    methods = "; ".join(f"{name}: {', '.join(map(spell, method_parameters(name)))}" for name in names)
    raise SteeringConfigError(f"{', '.join(map(spell, given))} belong to different steering methods ({methods}); "
                              f"choose one with {spell('method')}")


def check_parameters(name: str, parameters: Iterable[str], spell: Callable[[str], str] = str) -> None:
    """Refuse a parameter that steering method `name` does not take, naming the ones it does."""
    allowed = method_parameters(name)
    foreign = [key for key in parameters if key not in allowed]
    if foreign:
        what = "is not a parameter" if len(foreign) == 1 else "are not parameters"
        raise SteeringConfigError(f"{', '.join(map(spell, foreign))} {what} of steering method {name!r}; its "
                                  f"parameters: {', '.join(map(spell, allowed))}")


def check_method(method: str | None, parameters: dict[str, Any], spell: Callable[[str], str] = str) -> str:
    """The method's name (None: the one `parameters` choose), checked without a model: a known name, its own
    parameters, each value's range (a head set only once the model is known)."""
    name = method if method is not None else method_for_parameters(parameters, spell)
    check_parameters(name, parameters, spell)
    values = {key: value for key, value in parameters.items() if key != "heads"}
    if "heads" in method_parameters(name):
        values["heads"] = HeadConfig(())  # stands in for the head set
    method_class(name)(**values)
    return name


def make_method(name: str, model: Any, **parameters: Any) -> SteeringMethod:
    """Steering method `name` for `model`; a parameter of another method is refused, naming the allowed ones."""
    check_parameters(name, parameters)
    return method_class(name).build(model, **parameters)


def default_method(model: Any) -> SteeringMethod:
    """PASTA on the model's default head set (installed by `attnsteer profile --install`, else shipped), else the
    profiling-free default; the choice and where it came from are logged in one line."""
    from attnsteer.heads.defaults import default_head_set

    found = default_head_set(model)
    if found is None:
        method = make_method(PROFILING_FREE_DEFAULT, model)
        logger.info("attnsteer: no profiled head set for this model (none shipped, none installed by `attnsteer "
                    "profile --install`); steering with %s", method.describe())
        return method
    method = make_method("pasta", model, heads=found.head_file.heads)
    logger.info("attnsteer: steering with %s, %s", method.describe(), found.describe())
    return method


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SteeringConfigError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@register_method
@dataclass(frozen=True)
class Pasta(SteeringMethod):
    """PASTA: `heads` (a HeadConfig), `alpha` in (0, 1], `mode` exclude | include (see `SteeringConfig`)."""

    name: ClassVar[str] = "pasta"
    heads: HeadConfig
    alpha: float = 0.01
    mode: SteeringMode = "exclude"

    def __post_init__(self) -> None:
        SteeringConfig(self.alpha, self.mode)  # validates both
        object.__setattr__(self, "alpha", float(self.alpha))

    @classmethod
    def build(cls, model: Any, heads: Any = None, alpha: float = 0.01, mode: SteeringMode = "exclude") -> Pasta:
        from attnsteer.heads.defaults import heads_for_model

        return cls(heads_for_model(heads, model), alpha, mode)

    def row(self) -> RowSteering:
        return RowSteering(self.heads, SteeringConfig(self.alpha, self.mode))


@register_method
@dataclass(frozen=True)
class InstaBoost(SteeringMethod):
    """InstABoost: attention to the emphasised tokens multiplied by `boost` (>= 1) on every head, renormalised:
    a constant log(boost) added to their scores (PASTA's include mode with alpha = 1 / boost, on all heads)."""

    name: ClassVar[str] = "instaboost"
    boost: float = 3.0  # the better of 3 and 10 on both embedded models' valid splits (docs/results.md)
    every_head: HeadConfig = field(default=HeadConfig(()), repr=False)

    def __post_init__(self) -> None:
        if _number(self.boost, "boost") < 1.0:
            raise SteeringConfigError(f"boost must be >= 1 (the factor on attention to emphasised tokens; 1 leaves "
                                      f"the model unchanged), got {self.boost!r}")
        object.__setattr__(self, "boost", float(self.boost))  # 5 and 5.0 are one setting

    @classmethod
    def build(cls, model: Any, boost: float = 3.0) -> InstaBoost:
        from attnsteer.model_info import model_shape

        return cls(boost, HeadConfig.all_heads(*model_shape(model)))

    def row(self) -> RowSteering:
        return RowSteering(self.every_head, SteeringConfig(1.0 / self.boost, "include"))


@register_method
@dataclass(frozen=True)
class Spotlight(SteeringMethod):
    """Spotlight: every layer's attention on the span raised to `target` where below it (`SpotlightTarget`).

    Defaults from the valid splits of both embedded models (docs/results.md, "Steering methods"): target 0.3
    per head and query, which is also causal (a steered prefix can be cached); the reference code's own
    setting is target=0.2, granularity="layer".
    """

    name: ClassVar[str] = "spotlight"
    target: float = 0.3
    granularity: Granularity = "head"

    def __post_init__(self) -> None:
        SpotlightTarget(self.target, self.granularity)  # validates both
        object.__setattr__(self, "target", float(self.target))

    @classmethod
    def build(cls, model: Any, target: float = 0.3, granularity: Granularity = "head") -> Spotlight:
        return cls(target, granularity)

    def row(self) -> RowSteering:
        return RowSteering(HeadConfig(()), spotlight=SpotlightTarget(self.target, self.granularity))


# What `Steerer(model, tok)` steers with on a model that ships no profiled head set (see default_method), with
# the method's defaults: the best profiling-free candidate averaged over both embedded models' valid splits
# that keeps fluency (docs/results.md, "Steering methods").
PROFILING_FREE_DEFAULT = "spotlight"
