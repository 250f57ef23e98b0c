"""The hard floor: a data-driven scan for instructions an L1 tech must never be given.

Rules live in ``data/hard_floor_rules.json`` (documented there). Text is
normalised before the scan so case, spacing, punctuation tricks, zero-width
characters and Unicode look-alikes do not get an unsafe step past it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "hard_floor_rules.json"

# Letters that look like ASCII ones (Cyrillic, Greek, others) folded to ASCII.
_LOOKALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ո": "n", "ս": "u", "ᴠ": "v", "ѡ": "w", "к": "k", "м": "m",
    "т": "t", "в": "b", "н": "h", "ь": "b", "ї": "i", "ё": "e",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ʏ": "y", "ɪ": "i", "ʟ": "l", "ɴ": "n", "ʀ": "r", "ꜱ": "s",
    "ᴀ": "a", "ᴇ": "e", "ᴏ": "o", "ᴜ": "u", "ᴅ": "d", "ᴍ": "m", "ᴛ": "t", "ᴋ": "k", "ᴘ": "p", "ᴄ": "c",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "’": "'", "‘": "'", "ʼ": "'",
})
_INVISIBLE = re.compile(r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]")
_NEGATION = re.compile(r"(?:\b(?:do not|don't|dont|never|must not|mustn't|should not|shouldn't|cannot|can't|not)\s+)$")
_SQUASHED_NEGATIONS = ("donot", "dont", "never", "mustnot", "shouldnot", "not")


@dataclass(frozen=True)
class Violation:
    rule_id: str
    description: str
    matched: str

    def __str__(self) -> str:
        return f"it tells the tech to do something L1 must never do ({self.description}): “{self.matched}”"


@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    patterns: tuple[re.Pattern, ...]
    squashed: tuple[re.Pattern, ...]


def normalize(text: str) -> str:
    """NFKC, look-alikes folded, invisible characters dropped, lower case, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text).translate(_LOOKALIKES).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(text.split())


def squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text)


@lru_cache(maxsize=1)
def rules() -> tuple[_Rule, ...]:
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    return tuple(
        _Rule(
            id=r["id"],
            description=r["description"],
            patterns=tuple(re.compile(p) for p in r.get("patterns", [])),
            squashed=tuple(re.compile(p) for p in r.get("squashed", [])),
        )
        for r in data["rules"]
    )


def _negated(before: str) -> bool:
    return bool(_NEGATION.search(before[-40:]))


def scan(text: str) -> Violation | None:
    """The first hard-floor rule ``text`` breaks, or None."""
    spaced = normalize(text or "")
    squashed = squash(spaced)
    for rule in rules():
        for pattern in rule.patterns:
            for match in pattern.finditer(spaced):
                if not _negated(spaced[: match.start()]):
                    return Violation(rule.id, rule.description, match.group(0).strip())
        for pattern in rule.squashed:
            for match in pattern.finditer(squashed):
                if not squashed[: match.start()].endswith(_SQUASHED_NEGATIONS):
                    return Violation(rule.id, rule.description, match.group(0))
    return None
