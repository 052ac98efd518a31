"""Selective Prompt Anchoring (SPA, Tian & Zhang, ICML 2025, arXiv 2408.09121) as the evaluation method `spa`,
through its authors' package `anchoring` (the `spa` extra: `pip install 'attnsteer[spa]'`). Light to import
(no torch, no anchoring): the CLI checks a strength and the package before it loads a model.

SPA runs the model on two prompts: the prompt itself, and the prompt with its anchors replaced by a mask token
(and masked out of the attention); each next-token logit is pushed away from the masked prompt's,
logits + (strength - 1) * (logits - masked logits), weighted by the token's probability (`modulated_by_prob`,
the package's default). The anchors are the task's emphasis, as PASTA's prompt renders it
(`anchoring.format_spa_input`: every occurrence of each emphasised text is masked).

- generation: `model.generate` with the package's `SPALogitsProcessor`, greedy, one prompt at a time (the
  processor holds one sequence's masked-prompt cache);
- scoring: the same processor applied teacher-forced, token by token, to each candidate: the log-probabilities
  of the distribution SPA generates from. A fresh processor per candidate: two prompt passes per candidate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import TYPE_CHECKING, Any

from attnsteer.chat import encode_prompt
from attnsteer.errors import AttnsteerError, NoEmphasisError
from attnsteer.evaluation.methods import RenderedPrompt

if TYPE_CHECKING:
    import torch

    from attnsteer.steerer import Prompt, Steerer

# The package's documented default strength (its README; SPAPipeline's `anchoring_strength`): 1 = no effect.
DEFAULT_STRENGTH = 1.4
# What `anchoring.spa_tokenize` masks anchors with when the tokenizer has no mask token.
FALLBACK_MASK_TOKEN = "MASKTOKEN"
INSTALL_HINT = "pip install 'attnsteer[spa]' (or: pip install --no-deps anchoring==0.1.0)"


class AnchoringMissingError(AttnsteerError):
    """Evaluation method `spa` was asked for but the `anchoring` package cannot be imported."""


def require_anchoring() -> ModuleType:
    """The `anchoring` package; missing, an error that says how to install it."""
    try:
        import anchoring
    except ImportError as error:
        raise AnchoringMissingError(f"evaluation method 'spa' needs the anchoring package (Selective Prompt "
                                    f"Anchoring), which cannot be imported ({error}): {INSTALL_HINT}") from None
    return anchoring


def check_strength(strength: float) -> float:
    """SPA's strength: any finite number (1: no effect, > 1: emphasis, < 1: de-emphasis, < 0: avoidance)."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise AttnsteerError(f"spa_strength must be a finite number (1 leaves the model unchanged, > 1 emphasises "
                             f"the anchors; the package's default is {DEFAULT_STRENGTH}), got {strength!r}")
    return float(strength)


@dataclass
class SpaRuns:
    """Scores and generations of one method's prompts through SPA (see the module docstring)."""

    steerer: Steerer
    strength: float | None
    chat: bool
    batch_size: int | None = 1  # SPALogitsProcessor steers one sequence
    anchoring: ModuleType = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.strength = check_strength(DEFAULT_STRENGTH if self.strength is None else self.strength)
        self.anchoring = require_anchoring()

    def to_dict(self) -> dict[str, Any]:
        """The run's config "steering": SPA's settings and the package's version."""
        try:
            package = version("anchoring")
        except PackageNotFoundError:
            package = None
        return {"method": "spa", "strength": self.strength, "modulated_by_prob": True, "use_attention_mask": True,
                "anchoring_version": package}

    def score(self, rendered: RenderedPrompt, prompt: Prompt, candidates: Sequence[str]) -> list[tuple[float, int]]:
        """(sum log-prob in nats, number of tokens) of each candidate under SPA's adjusted distribution."""
        ids = self._ids(prompt)
        tokenizer = self.steerer.tokenizer
        continuations = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in candidates]
        if not continuations or any(not tokens for tokens in continuations):
            raise ValueError("give at least one candidate, none empty")
        return [self._score_one(ids, tokens, self._processor(rendered)) for tokens in continuations]

    def generate(self, rendered: Sequence[RenderedPrompt], prompts: Sequence[Prompt], max_new_tokens: int,
                 streamer: Any) -> list[str]:
        """Greedy continuations, one prompt at a time, each with its own SPA logits processor."""
        outputs = []
        for item, prompt in zip(rendered, prompts, strict=True):
            with _quiet():
                outputs.append(self.steerer.generate(prompt, max_new_tokens=max_new_tokens, steer=False,
                                                     logits_processor=[self._processor(item)], streamer=streamer))
        return outputs

    def _score_one(self, ids: torch.Tensor, tokens: list[int], processor: Any) -> tuple[float, int]:
        """ids: [1, prompt tokens]; the candidate's tokens teacher-forced, each step's logits through `processor`."""
        import torch

        full = torch.cat([ids, torch.tensor([tokens], device=ids.device)], dim=1)
        total = 0.0
        with torch.inference_mode(), _quiet():
            # logits[t]: [vocab], the main prompt's prediction of tokens[t]
            logits = self.steerer.model(input_ids=full, logits_to_keep=len(tokens) + 1).logits[0, :-1].float()
            for step, token in enumerate(tokens):
                adjusted = processor(full[:, : ids.shape[1] + step], logits[step : step + 1])
                total += float(torch.log_softmax(adjusted.float(), dim=-1)[0, token])
        return total, len(tokens)

    def _processor(self, rendered: RenderedPrompt) -> Any:
        """A fresh `SPALogitsProcessor` for one sequence: the masked prompt, this strength, the package's defaults."""
        tokenizer = self.steerer.tokenizer
        mask_token = tokenizer.mask_token or FALLBACK_MASK_TOKEN
        anchors = [rendered.prompt[span.start : span.end] for span in rendered.emphasis or ()]
        if not anchors:
            raise NoEmphasisError("spa needs anchors, but this prompt has no emphasised text")
        _, masked = self.anchoring.format_spa_input(rendered.prompt, anchors, mask_token, whole_word_only=False)
        masked_prompt = RenderedPrompt(masked, None, rendered.demonstrations).for_model(tokenizer, self.chat)
        return self.anchoring.SPALogitsProcessor(
            aux_model=self.steerer.model, aux_input_ids=self._ids(masked_prompt), mask_token=mask_token,
            strength=self.strength, modulated_by_prob=True, tokenizer=tokenizer, use_attention_mask=True)

    def _ids(self, prompt: Prompt) -> torch.Tensor:
        """[1, tokens] ids of a prompt as the Steerer tokenises it, on the model's device."""
        import torch

        ids, _ = encode_prompt(self.steerer.tokenizer, prompt)  # type: ignore[arg-type]
        return torch.tensor([ids], device=self.steerer.model.device)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the deprecation warning transformers gives the package's `past_key_values=` at every step."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
        yield
