"""Inflections by lemma: every form simplemma's dictionaries know for a word the concept files use.

A language file lists a word once ('salasana', 'antywirusowy', 'Kennwort'); a desk writes it inflected
('salasanansa', 'antywirusowego', 'Kennwörter'). Loading simplemma's dictionaries on a scan costs seconds
and hundreds of MB per language (Finnish: 7 s, 414 MB), so the forms are compiled once, offline, into
``data/safety/lemmas.json``: for each language, each form whose lemma is the lemma of a term word, mapped
to that word. The matcher reads the table as another spelling of the word, in that language only.

Rebuild after editing a language file: ``python -m rflow_tui.safety.lemmas``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from rflow_tui.safety.normalize import fold

LEMMA_FILE = Path(__file__).resolve().parent.parent / "data" / "safety" / "lemmas.json"
SIMPLEMMA_CODE = {"no": "nb"}  # our language code -> simplemma's, where they differ
_MIN_LENGTH = 4  # shorter words are function words or collide across languages
_CUES_BY_LEMMA = ("check", "handoff")  # verbs; the other cues are function words, listed form by form
_SKIP = ("en",)  # English inflects little and its stems say which forms they mean ('attached' is not 'attach')


@lru_cache(maxsize=1)
def forms() -> dict[str, dict[str, str]]:
    """{language: {folded form: the term word it inflects}}; empty when the table is absent."""
    if not LEMMA_FILE.exists():
        return {}
    data = json.loads(LEMMA_FILE.read_text(encoding="utf-8"))
    return {lang: dict(table) for lang, table in data["forms"].items()}


def _term_words(data: dict[str, Any]) -> set[str]:
    words: set[str] = set()
    cues = data.get("cues", {})
    tables = [*data.get("actions", {}).values(), *data.get("objects", {}).values()]
    tables += [cues.get(kind, []) for kind in _CUES_BY_LEMMA]
    for terms in tables:
        for text in terms:
            for piece in fold(text).split():
                if piece.isalpha() and len(piece) >= _MIN_LENGTH:
                    words.add(piece)
    return words


def _heads(data: dict[str, Any]) -> tuple[set[str], tuple[str, ...]]:
    """The file's one-word action and object terms: exact ones, and stems ('deaktivier*')."""
    exact: set[str] = set()
    stems: list[str] = []
    for table in (data.get("actions", {}), data.get("objects", {})):
        for terms in table.values():
            for text in terms:
                pieces = fold(text).split()
                if len(pieces) != 1:
                    continue  # 'fa* ... dire' covers no single word
                if pieces[0].endswith("*"):
                    stems.append(pieces[0][:-1])
                elif pieces:
                    exact.add(pieces[0])
    return exact, tuple(stems)


def build(directory: Path) -> dict[str, dict[str, str]]:
    """Every language file's term words with their other forms (offline: loads simplemma's dictionaries)."""
    from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

    factory = DefaultDictionaryFactory(cache_max_size=1)
    out: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        code = data.get("language")
        if not code or code in _SKIP:
            continue
        dictionary = factory.get_dictionary(SIMPLEMMA_CODE.get(code, code))
        lemmas_of: dict[str, set[str]] = defaultdict(set)  # folded form -> folded lemmas
        forms_of: dict[str, set[str]] = defaultdict(set)  # folded lemma -> folded forms
        for form, lemma in dictionary.items():
            f, lem = fold(form), fold(lemma)
            if f.isalpha() and lem.isalpha():
                lemmas_of[f].add(lem)
                forms_of[lem].add(f)
        markers = {fold(m) for m in data.get("markers", [])}
        words = _term_words(data)
        exact, stems = _heads(data)
        table: dict[str, str] = {}
        for word in sorted(words):
            own = lemmas_of.get(word)
            if word not in forms_of or (own is not None and word not in own):
                continue  # not a lemma: an inflected form is listed on purpose ('deaktiviert', 'received')
            for form in forms_of[word]:
                if (
                    form == word
                    or len(form) < _MIN_LENGTH
                    or form in markers
                    or form in words  # a word of the file is itself, not a form of another
                    or lemmas_of.get(form, {word}) != {word}  # ambiguous: another lemma's form too
                    or form in exact
                    or form.startswith(stems)  # a stem of the file spells it already
                ):
                    continue
                table.setdefault(form, word)
        out[code] = dict(sorted(table.items()))
    return out


def main() -> None:
    directory = LEMMA_FILE.parent
    table = build(directory)
    LEMMA_FILE.write_text(
        json.dumps(
            {
                "about": "Generated by 'python -m rflow_tui.safety.lemmas' from simplemma's dictionaries: each form "
                "(folded) of a word the language file uses, mapped to that word. Do not edit by hand.",
                "forms": table,
            },
            ensure_ascii=False,
            indent=0,
            sort_keys=False,
        )
        + "\n",
        encoding="utf-8",
    )
    for code, rows in table.items():
        print(f"{code}: {len(rows)} forms", file=sys.stderr)


if __name__ == "__main__":
    main()
