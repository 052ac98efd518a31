"""`DecodeCounters`: what a decoder has done since the server started, for /health, metrics and benchmarks."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

RECENT_STEPS = 256
COUNTER_NAMES = ("steps", "tokens_generated", "prompt_tokens", "reused_prompt_tokens", "rows_admitted",
                 "rows_finished", "rows_failed", "rows_cancelled")


@dataclass
class DecodeCounters:
    """Counts since the server started; written by the worker thread, read from any thread.

    steps: decode forwards over the running batch (a prefill is not a step); recent_step_sizes: the rows of
    each of the last RECENT_STEPS steps. tokens_generated: tokens picked for live rows (an EOS included).
    prompt_tokens: prompt tokens of the rows that started decoding (reused_prompt_tokens of them came from a
    prefix cache). rows_admitted: rows that started decoding; rows_finished / rows_failed / rows_cancelled:
    rows that ended with a Finished event, with a Failed event, or because their client went away.
    """

    steps: int = 0
    tokens_generated: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    rows_admitted: int = 0
    rows_finished: int = 0
    rows_failed: int = 0
    rows_cancelled: int = 0
    recent_step_sizes: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_STEPS))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        """Add to counters by name, e.g. `add(tokens_generated=3)`."""
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def note_step(self, rows: int) -> None:
        """One decode step over `rows` rows."""
        with self.lock:
            self.steps += 1
            self.recent_step_sizes.append(rows)

    def note_outcomes(self, outcomes: Iterable[str | None]) -> None:
        """Count ended rows by outcome ("finished", "failed", "cancelled"; None: still running)."""
        counts = collections.Counter(outcome for outcome in outcomes if outcome is not None)
        self.add(rows_finished=counts["finished"], rows_failed=counts["failed"], rows_cancelled=counts["cancelled"])

    def snapshot(self) -> dict[str, object]:
        """The counters as plain numbers, and recent_step_sizes as a list (oldest first)."""
        with self.lock:
            return {**{name: getattr(self, name) for name in COUNTER_NAMES},
                    "recent_step_sizes": list(self.recent_step_sizes)}
