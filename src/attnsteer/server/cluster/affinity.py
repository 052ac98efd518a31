"""The context-affinity key of a request, and the replicas ranked for it (no Ray, no torch, no model).

A replica's steered prefix cache (`attnsteer.context.PrefixCache`) reuses the keys and values of a prompt's
leading 16-token blocks when the tokens, their emphasis flags, the model and the steering agree. Requests that
reuse a context (LLMSteer's contexts, a long document asked several questions) share the beginning of their
prompt, so `affinity_key` hashes (sha256, stable across processes and machines):

- the `model` the request names;
- the first `AFFINITY_CHARS` characters of the prompt as rendered here: a completion's (first) prompt; a chat's
  messages as `role\\ncontent\\n\\n` in order (the template is the replica's business: equal messages render
  equally on every replica);
- the emphasis inside those characters (character spans, clipped to them; substrings located at their first
  occurrence) and `emphasis_markup`;
- the steering fields (`method`, its parameters, the `steering` object) when anything is emphasised anywhere in
  the prompt: a steered prefix's keys and values depend on the steering even before the first emphasised token,
  a plain request's do not.

AFFINITY_CHARS = 256: about 64 tokens at the ~4 characters per token of English text, four cache blocks. A
context shorter than that gets little from the cache anyway (its questions fall inside the key, so they spread
over the replicas); a longer one is routed by its first 256 characters whatever the question after it. Two
contexts that share their first 256 characters (a long common system prompt) land on one replica: correct,
only less evenly spread.

The key is character-level, computed from the JSON body without a tokenizer, so the router needs no model.
A body that is not a completions or chat request, or not valid JSON, has no key (None: any replica; the replica
answers the request's 400 itself). `rank_replicas` orders replicas for a key by rendezvous hashing (highest
random weight) over their slots: every router on every machine agrees without sharing state, and when a replica
leaves only the keys it owned move.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

AFFINITY_CHARS = 256
AFFINITY_PATHS = {"/v1/completions": "prompt", "/v1/chat/completions": "messages"}
STEERING_FIELDS = ("method", "heads", "alpha", "mode", "boost", "target", "granularity", "steering")

Span = tuple[int, int]


def affinity_key(path: str, body: bytes, chars: int = AFFINITY_CHARS) -> str | None:
    """The sha256 hex key of a POST to `path` with JSON `body` (see the module docstring); None when the
    request has no context to keep together (another path, a body that does not parse)."""
    kind = AFFINITY_PATHS.get(path)
    try:
        request = json.loads(body) if kind else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict):
        return None
    rendered = render_completion(request) if kind == "prompt" else render_chat(request)
    if rendered is None:
        return None
    text, spans = rendered
    emphasised = bool(spans) or request.get("emphasis_markup") is True
    material = {"model": request.get("model"), "text": text[:chars],
                "spans": sorted({(start, min(end, chars)) for start, end in spans if start < chars}),
                "markup": request.get("emphasis_markup") is True,
                "steering": {name: request.get(name) for name in STEERING_FIELDS} if emphasised else None}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def rank_replicas(key: str, slots: Iterable[str]) -> list[str]:
    """`slots` (replica ranks or ids) from the one that should serve `key` to the last resort (rendezvous
    hashing: each slot's weight is sha256(key, slot); the heaviest wins)."""
    def weight(slot: str) -> str:
        return hashlib.sha256(f"{key}\0{slot}".encode()).hexdigest()

    return sorted(slots, key=weight, reverse=True)


def render_completion(request: dict[str, Any]) -> tuple[str, list[Span]] | None:
    """A completions body's first prompt and the character spans of its emphasis; None without a prompt."""
    prompt, emphasis = request.get("prompt"), request.get("emphasis")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt else None
        emphasis = emphasis[0] if isinstance(emphasis, list) and emphasis and isinstance(emphasis[0], list) \
            else emphasis
    if not isinstance(prompt, str):
        return None
    return prompt, spans_in(prompt, emphasis, 0)


def render_chat(request: dict[str, Any]) -> tuple[str, list[Span]] | None:
    """A chat body's messages as `role\\ncontent\\n\\n` and the spans of their emphasis (each message's own,
    then the request's substrings at their first occurrence in message order); None without messages."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    text, spans, contents = "", [], []
    for message in messages:
        if not isinstance(message, dict):
            return None
        content = message_text(message.get("content"))
        start = len(text) + len(str(message.get("role"))) + 1
        text += f"{message.get('role')}\n{content}\n\n"
        spans += spans_in(content, message.get("emphasis"), start)
        contents.append((start, content))
    found = request.get("emphasis")
    for substring in found if isinstance(found, list) else []:
        spans += next((spans_in(content, [substring], start) for start, content in contents
                       if isinstance(substring, str) and substring and substring in content), [])
    return text, spans


def message_text(content: Any) -> str:
    """A message's content as text: a string, or the concatenated `text` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def spans_in(text: str, emphasis: Any, offset: int) -> list[Span]:
    """Character spans (shifted by `offset`) of `emphasis` in `text`: `{"start", "end"}` spans as given,
    substrings at their first occurrence; entries that are neither, or not found, are left out."""
    spans = []
    for entry in emphasis if isinstance(emphasis, list) else []:
        if isinstance(entry, str) and entry and entry in text:
            start = text.index(entry)
            spans.append((offset + start, offset + start + len(entry)))
        elif isinstance(entry, dict) and isinstance(entry.get("start"), int) and isinstance(entry.get("end"), int):
            spans.append((offset + entry["start"], offset + entry["end"]))
    return spans
