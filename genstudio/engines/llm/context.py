"""Fitting a conversation into the context window: the oldest turns go first, the system prompt stays."""

from __future__ import annotations


class ContextOverflow(ValueError):
    """Even the system prompt and the last message alone do not fit."""


def reply_reserve(window: int, max_new_tokens: int) -> int:
    """Tokens kept free for the reply: max_new_tokens, but never more than half the window."""
    return max(1, min(max_new_tokens, window // 2))


def fit_context(tokenizer, messages: list[dict], window: int, max_new_tokens: int) -> tuple[list[int], int, str]:
    """Returns (prompt ids, number of dropped messages, a notice for the user or '')."""
    if not messages:
        raise ValueError("a chat needs at least one message")
    budget = window - reply_reserve(window, max_new_tokens)
    system = [m for m in messages[:1] if m.get("role") == "system"]
    rest = list(messages[len(system):])
    dropped = 0
    while True:
        ids = tokenizer.encode_chat(system + rest)
        if len(ids) <= budget:
            break
        if len(rest) <= 1:
            raise ContextOverflow(f"the last message and the system prompt take {len(ids)} tokens; the context "
                                  f"holds {window} with {window - budget} kept for the reply")
        rest.pop(0)  # the oldest turn; a reply left without its question goes too
        dropped += 1
        while len(rest) > 1 and rest[0].get("role") != "user":
            rest.pop(0)
            dropped += 1
    notice = ""
    if dropped:
        kept = " (the system prompt is kept)" if system else ""
        notice = (f"The conversation is longer than the {window}-token context: the {dropped} oldest "
                  f"message{'s' if dropped != 1 else ''} {'were' if dropped != 1 else 'was'} left out{kept}.")
    return ids, dropped, notice
