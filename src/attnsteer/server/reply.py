"""Detokenise a reply incrementally: text deltas, stop strings, no half characters."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


class ReplyText:
    """The text of one reply, decoded from its tokens so far.

    `add` returns the text safe to send now: it holds back a possible start of a stop string and an
    incomplete UTF-8 character (decoded as U+FFFD), so streamed deltas never need to be retracted.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer, self.stop = tokenizer, stop
        self.tokens: list[int] = []
        self.sent = 0
        self.text = ""
        self.holdback = max((len(item) for item in stop), default=1) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def add(self, token: int) -> tuple[str, bool]:
        """(text to send now, whether a stop string was reached)."""
        self.tokens.append(token)
        self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        cut = min((index for item in self.stop if (index := self.text.find(item)) >= 0), default=-1)
        if cut >= 0:
            self.text = self.text[:cut]
            return self._send_up_to(cut), True
        safe = len(self.text) - self.holdback
        while safe > self.sent and self.text[safe - 1] == "\ufffd":
            safe -= 1
        return self._send_up_to(safe), False

    def flush(self) -> str:
        """Everything not sent yet (at the end of the reply)."""
        return self._send_up_to(len(self.text))

    def _send_up_to(self, end: int) -> str:
        if end <= self.sent:
            return ""
        delta, self.sent = self.text[self.sent : end], end
        return delta
