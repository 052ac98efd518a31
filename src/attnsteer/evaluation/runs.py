"""How one evaluation method's prompts are run: through the Steerer, switched to the method's steering method
with the strengths given (`SteererRuns`), or through Selective Prompt Anchoring (`evaluation.spa.SpaRuns`).

Light to import (no torch): the Steerer and SPA load only when a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from attnsteer.evaluation.methods import EvalMethod, RenderedPrompt
from attnsteer.steering.methods import method_parameters

if TYPE_CHECKING:
    from attnsteer.steerer import Prompt, Steerer


def method_steerer(steerer: Steerer, spec: EvalMethod, strengths: dict[str, Any]) -> Steerer:
    """The Steerer `spec`'s runs use: `steerer` switched to the method's steering method (a context method keeps
    the steerer's), the strengths given (not None) for that steering method overriding the steerer's own."""
    if not spec.steers or spec.anchoring:
        return steerer
    name = spec.steering or steerer.method.name
    given = {key: value for key, value in strengths.items() if value is not None and key in method_parameters(name)}
    if name == steerer.method.name and not given:
        return steerer
    return steerer.with_options(method=name, **given)


def method_runs(spec: EvalMethod, steerer: Steerer, chat: bool, spa_strength: float | None) -> Runs:
    """How `spec`'s prompts are scored and generated: SPA (`evaluation.spa`) or the Steerer."""
    if spec.anchoring:
        from attnsteer.evaluation.spa import SpaRuns

        return SpaRuns(steerer, spa_strength, chat)
    return SteererRuns(steerer, spec.steers)


class Runs(Protocol):
    """Scores and generations for one method's rendered prompts (`SteererRuns`, `evaluation.spa.SpaRuns`)."""

    steerer: Steerer
    batch_size: int | None  # the most prompts `generate` takes at once (None: the caller's batch size)

    def to_dict(self) -> dict[str, Any] | None:
        """What steers the runs, JSON-ready (the run's config "steering"); None: nothing does."""

    def score(self, rendered: RenderedPrompt, prompt: Prompt, candidates: Sequence[str]) -> list[tuple[float, int]]:
        """(sum log-prob in nats, number of tokens) of each candidate after `prompt` (= rendered for the model)."""

    def generate(self, rendered: Sequence[RenderedPrompt], prompts: Sequence[Prompt], max_new_tokens: int,
                 streamer: Any) -> list[str]:
        """Greedy continuations of `prompts`, the new text only."""


@dataclass(frozen=True)
class SteererRuns:
    """Through the Steerer: steered (its steering method) where the rendering has emphasis and `steers`."""

    steerer: Steerer
    steers: bool
    batch_size: int | None = None

    def to_dict(self) -> dict[str, Any] | None:
        return self.steerer.method.to_dict() if self.steers else None

    def score(self, rendered: RenderedPrompt, prompt: Prompt, candidates: Sequence[str]) -> list[tuple[float, int]]:
        return self.steerer.score_candidates(prompt, candidates, steer=rendered.steers)

    def generate(self, rendered: Sequence[RenderedPrompt], prompts: Sequence[Prompt], max_new_tokens: int,
                 streamer: Any) -> list[str]:
        return self.steerer.generate(list(prompts), max_new_tokens=max_new_tokens, steer=rendered[0].steers,
                                     streamer=streamer)
