"""Which flows fit a ticket: a score from the flow's keywords, title and category against
the ticket's subject and body. Pure text work; the store picks the candidates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol


class Matchable(Protocol):
    """What matching reads of a flow."""

    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def match_keywords(self) -> Sequence[str] | None: ...


_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "cant",
        "cannot",
        "do",
        "does",
        "doesnt",
        "dont",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "im",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "please",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "they",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "wont",
        "with",
        "you",
        "your",
        "keep",
        "keeps",
        "kept",
        "still",
        "again",
        "after",
        "since",
        "just",
        "all",
        "any",
        "some",
        "get",
        "got",
        "been",
        "being",
    ]
)


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", (text or "").lower().replace("'", ""))
    return [_stem(w) for w in words if w not in _STOP]


def _stem(word: str) -> str:
    """Crude plural/verb folding so 'printers'/'printer' and 'syncing'/'sync' meet."""
    for suffix in ("ing", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _phrase_in(phrase: list[str], words: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def match_score(flow: Matchable, subject: str, body: str) -> float:
    """How well a flow fits a ticket: keyword phrases weigh most, the subject more than
    the body; title and category words add a little. 0 means no evidence at all."""
    subject_words, body_words = _tokens(subject), _tokens(body)
    score = 0.0
    for keyword in flow.match_keywords or []:
        phrase = _tokens(keyword)
        weight = 1.0 + 0.5 * (len(phrase) - 1)  # a matched phrase is stronger evidence than a word
        if _phrase_in(phrase, subject_words):
            score += 3.0 * weight
        elif _phrase_in(phrase, body_words):
            score += 1.5 * weight
    subject_set, body_set = set(subject_words), set(body_words)
    for word in set(_tokens(flow.title)):
        score += 1.0 if word in subject_set else 0.5 if word in body_set else 0.0
    for word in set(_tokens(flow.category or "")):
        score += 0.5 if word in subject_set or word in body_set else 0.0
    return score
