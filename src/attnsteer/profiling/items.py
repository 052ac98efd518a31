"""Profiling items: a task example turned into one token sequence and a scalar score rule.

Head profiling scores thousands of (head, example) pairs, so each example is scored from ONE forward
pass (teacher forcing, no generation):
- "score" examples (candidates with a gold answer): the sequence is the prompt; the score is the
  margin log P(gold's first token) - max over the other candidates of log P(their first token), read
  at the last prompt position. The gold's first token must differ from every other candidate's
  (checked; examples where it does not are skipped and counted); other candidates sharing a first token
  count once.
- "generate" examples: the sequence is prompt + reference answer (its first MAX_ANSWER_TOKENS
  tokens: where an instruction is followed or not shows early, and long answers dominate the cost);
  the score is the mean log-probability of those answer tokens.
Steering raises a head's score when it makes the right answer more likely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from attnsteer.chat import encode_prompt
from attnsteer.evaluation.methods import continuation, render
from attnsteer.tasks import Example

MAX_ANSWER_TOKENS = 24


@dataclass(frozen=True)
class ProfileItem:
    """One example ready to score.

    input_ids: [tokens] long, prompt (+ answer for "generate" items).
    emphasis_mask: [tokens] bool, True on emphasised prompt tokens.
    prompt_mask: [tokens] bool, True on prompt tokens (steering may down-weight them), False on the answer.
    first_emphasised: index of the first emphasised token; hidden states before it never change
        under steering (every key they see is equally biased), so profiling reuses them.
    targets: "score": the candidates' first token ids (gold first); "generate": the answer token ids.
    """

    example_id: str
    kind: str
    input_ids: torch.Tensor
    emphasis_mask: torch.Tensor
    prompt_mask: torch.Tensor
    first_emphasised: int
    targets: tuple[int, ...]

    @property
    def num_scored_positions(self) -> int:
        """How many final positions' logits the score needs (`logits_to_keep`)."""
        return 1 if self.kind == "score" else len(self.targets) + 1


def make_items(examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase,
               chat: bool = False) -> tuple[list[ProfileItem], list[str]]:
    """ProfileItems for `examples`, and the ids of examples skipped (the gold shares its first token).

    chat: the prompt through the tokenizer's chat template, as `attnsteer eval --chat` renders it.
    """
    items, skipped = [], []
    for example in examples:
        item = make_item(example, tokenizer, chat)
        if item is None:
            skipped.append(example.id)
        else:
            items.append(item)
    return items, skipped


def make_item(example: Example, tokenizer: PreTrainedTokenizerBase, chat: bool = False) -> ProfileItem | None:
    """The example as PASTA steers it (its prompt, its emphasis), or None when it cannot be scored."""
    prompt = render("pasta", example).for_model(tokenizer, chat)
    prompt_ids, emphasis = encode_prompt(tokenizer, prompt)
    if not any(emphasis):
        return None
    if example.kind == "score":
        firsts = [tokenizer(continuation(c, chat), add_special_tokens=False)["input_ids"][0]
                  for c in example.candidates]
        gold = firsts[example.gold]
        others = [token for i, token in enumerate(firsts) if i != example.gold]
        if gold in others:
            return None
        targets = (gold, *dict.fromkeys(others))
        answer: list[int] = []
    else:
        answer = tokenizer(continuation(example.answer, chat), add_special_tokens=False)["input_ids"]
        answer = answer[:MAX_ANSWER_TOKENS]
        targets = tuple(answer)
    ids = prompt_ids + answer
    return ProfileItem(
        example_id=example.id,
        kind=example.kind,
        input_ids=torch.tensor(ids),
        emphasis_mask=torch.tensor(emphasis + [False] * len(answer)),
        prompt_mask=torch.tensor([True] * len(prompt_ids) + [False] * len(answer)),
        first_emphasised=emphasis.index(True),
        targets=targets,
    )


def item_scores(item: ProfileItem, logits: torch.Tensor) -> torch.Tensor:
    """The score of each row from its final logits.

    logits: [rows, item.num_scored_positions, vocab]. Returns [rows] float32 (differentiable).
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if item.kind == "score":
        last = log_probs[:, -1, list(item.targets)]
        return last[:, 0] - last[:, 1:].max(dim=-1).values
    answer = torch.tensor(item.targets, device=logits.device)
    picked = log_probs[:, :-1].gather(-1, answer[None, :, None].expand(logits.shape[0], -1, 1))
    return picked.squeeze(-1).mean(dim=-1)
