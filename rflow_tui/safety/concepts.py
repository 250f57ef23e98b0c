"""The meaning layer of the hard floor: hazard = action concept x object concept, in any language a desk writes.

Each language is one data file (``data/safety/<lang>.json``): its terms for every action concept (disable,
decrypt, ask for, add to ...), every object concept (security tool, disk encryption, credential ...), and the
cues that make a sentence something other than an instruction (a negation or prohibition, a check, a question
about what happened, a hand-off to another team, a state). Product names live in ``vendors.json``, which
concept pairs are hazards in ``hazards.json``. Adding a language is adding a file.

Terms are folded like the rest of the floor (case, accents, look-alikes). A term is a word (``firewall``),
a stem (``desactiv*``), a compound tail (``*schutz``) or words in order with a small gap (``schakel ... uit``).
Typos are met by ``rapidfuzz``: an edit distance scaled to the word's length (one edit from five letters, two
from ten), the first two letters kept (or the second and third swapped), so short words and real neighbours
('reinstall', 'uninstall') never meet.
Everything is loaded on the first scan, never at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from rflow_tui.safety.normalize import fold

CONCEPT_DIR = Path(__file__).resolve().parent.parent / "data" / "safety"
_SPECIAL = ("hazards.json", "vendors.json", "lemmas.json")
_GAP = 10  # words allowed between the parts of 'schalten ... aus'
_WORD = re.compile(r"[a-z0-9]+")
# a sentence ends at . ! ? ; or a new line; a numbered step ('2.', '3)') starts a new one
_SENTENCE = re.compile(r"([.!?;]+)(?=\s|$)|\n|(?:^|\s)\(?\d{1,2}[.)](?=\s)")
CUE_KINDS = (
    "negation",
    "negation_after",
    "cancel",
    "request",
    "check",
    "handoff",
    "condition",
    "state",
    "modal",
    "infinitive",
    "disclose",
    "choice",
    "subordinate",
    "then",
    "owner",
)


@dataclass(frozen=True)
class Term:
    kind: str  # "a" action, "o" object, or a cue kind
    concept: str
    language: str
    parts: tuple[str, ...]  # each a word, 'stem*' or '*tail'


@dataclass(frozen=True)
class Hazard:
    rule: str
    pairs: frozenset[tuple[str, str]]
    alone: frozenset[str]  # object concepts that are the hazard with any instruction ('factory reset')
    requires: frozenset[str]  # when set, one of these concepts must appear in the step too
    vetoes: frozenset[str]  # concepts that make the pair something else ('reset your own password')
    # False: the English sentence rules have no words for this pair (a cleared event log, an approved push),
    # so in English too the concepts' mood decides
    agree: bool = True

    @cached_property
    def actions(self) -> frozenset[str]:
        return frozenset(a for a, _ in self.pairs)


@dataclass(eq=False)
class Concepts:
    """Every language's terms, indexed for matching, and the hazards they make."""

    languages: dict[str, str]  # code -> name
    markers: dict[str, frozenset[str]]  # code -> function words that say a text is in it
    hazards: list[Hazard]
    exact: dict[str, list[Term]] = field(default_factory=dict)
    prefix: dict[str, list[Term]] = field(default_factory=dict)  # first two letters -> terms
    suffix: list[Term] = field(default_factory=list)
    vocabulary: dict[str, list[str]] = field(default_factory=dict)  # first two letters -> words, for typos
    tails: dict[str, list[Term]] = field(default_factory=dict)  # a compound's last part -> its object terms
    forms: dict[str, set[str]] = field(default_factory=dict)  # an inflected form -> the term words it inflects
    fuzzy: bool = True
    dictionary: bool = True  # a word the English dictionary knows is never a typo

    def add(self, term: Term) -> None:
        head = term.parts[0]
        if head.startswith("*"):
            self.suffix.append(term)
        elif head.endswith("*"):
            self.prefix.setdefault(head[:2], []).append(term)
        else:
            self.exact.setdefault(head, []).append(term)
        if term.kind in ("a", "o"):
            for part in term.parts:
                word = part.strip("*")
                if len(word) >= 5 and not part.startswith("*"):
                    bucket = self.vocabulary.setdefault(word[:2], [])
                    if word not in bucket:
                        bucket.append(word)


def _fold_term(text: str) -> tuple[str, ...]:
    parts: list[str] = []
    for piece in fold(text).split():
        if piece == "...":
            parts.append("...")
            continue
        star_head, star_tail = piece.startswith("*"), piece.endswith("*")
        words = _WORD.findall(piece)
        for i, w in enumerate(words):
            parts.append(("*" if star_head and i == 0 else "") + w + ("*" if star_tail and i == len(words) - 1 else ""))
    return tuple(parts)


def load(directory: Path = CONCEPT_DIR, fuzzy: bool = True, dictionary: bool = True) -> Concepts:
    """Read every language file in ``directory`` with its vendors and hazards."""
    hazards_raw = json.loads((directory / "hazards.json").read_text(encoding="utf-8"))
    hazards = [
        Hazard(
            h["rule"],
            frozenset((a, o) for a, o in h.get("pairs", [])),
            frozenset(h.get("alone", [])),
            frozenset(h.get("requires", [])),
            frozenset(h.get("vetoes", [])),
            bool(h.get("english_agreement", True)),
        )
        for h in hazards_raw["hazards"]
    ]
    concepts = Concepts({}, {}, hazards, fuzzy=fuzzy, dictionary=dictionary)
    vendors = json.loads((directory / "vendors.json").read_text(encoding="utf-8"))
    for concept, names in vendors["objects"].items():
        for name in names:
            concepts.add(Term("o", concept, "vendor", _fold_term(name)))
    for path in sorted(directory.glob("*.json")):
        if path.name in _SPECIAL:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        code = data["language"]
        concepts.languages[code] = data["name"]
        concepts.markers[code] = frozenset(w for m in data.get("markers", []) for w in _fold_term(m))
        for kind, table in (("a", data.get("actions", {})), ("o", data.get("objects", {}))):
            for concept, terms in table.items():
                for text in terms:
                    concepts.add(Term(kind, concept, code, _fold_term(text)))
        for cue, terms in data.get("cues", {}).items():
            if cue not in CUE_KINDS:
                raise ValueError(f"{path.name}: unknown cue kind {cue!r} (known: {', '.join(CUE_KINDS)})")
            for text in terms:
                concepts.add(Term(cue, cue, code, _fold_term(text)))
    _add_forms(concepts, directory / "lemmas.json")
    _add_tails(concepts)
    return concepts


def _add_forms(concepts: Concepts, path: Path) -> None:
    """Each inflected form simplemma knows for a term's first word is another spelling of it, in the term's
    language ('antywirusowego' is 'antywirusowy'); later words of a term may be inflected too."""
    if not path.exists():
        return
    table = json.loads(path.read_text(encoding="utf-8"))["forms"]
    for code, rows in table.items():
        for form, word in rows.items():
            concepts.forms.setdefault(form, set()).add(word)
            for term in list(concepts.exact.get(word, ())):
                if term.language == code:
                    concepts.exact.setdefault(form, []).append(
                        Term(term.kind, term.concept, code, (form, *term.parts[1:]))
                    )


# Languages that write a noun phrase as one word: 'Echtzeitschutz', 'virusscanner', 'palomuuriasetukset'.
COMPOUNDING = frozenset({"de", "nl", "sv", "da", "no", "fi"})
_TAIL_MIN, _HEAD_MIN = 4, 3
_NAME_MIN = 5  # a shorter product name ('Duo', 'AVG') takes no case ending: 'duos' is not Duo
_ENDING_MAX = 3  # letters a compounding language may add to a compound's tail: '-en', '-et', '-es', '-ne'


def _ends_with(word: str, tail: str, language: str) -> bool:
    """'*beskyttelse' ends 'malwarebeskyttelsen' too, in a language that writes the article on the noun."""
    if len(word) <= len(tail):
        return False
    if word.endswith(tail):
        return True
    if language not in COMPOUNDING:
        return False
    cut = word.rfind(tail, 0, len(word))
    return cut > 0 and 0 < len(word) - cut - len(tail) <= _ENDING_MAX and word[cut + len(tail) :].isalpha()


def _add_tails(concepts: Concepts) -> None:
    """A compound is what its last part is ('Echtzeitschutz' is a 'Schutz'): every one-word object term of a
    compounding language also ends compounds, without the file listing '*schutz'."""
    for word, terms in concepts.exact.items():
        if len(word) < _TAIL_MIN:
            continue
        for term in terms:
            if term.kind == "o" and term.language in COMPOUNDING and len(term.parts) == 1:
                concepts.tails.setdefault(word, []).append(term)


@lru_cache(maxsize=1)
def default_concepts() -> Concepts:
    return load()


# --- matching ------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _real_word(word: str) -> bool:
    """Whether simplemma's English dictionary knows the word (loaded on the first typo check: 0.25 s, 40 MB;
    the other languages' dictionaries cost up to 4.5 s and 420 MB each, so they are not loaded)."""
    import simplemma

    return bool(simplemma.is_known(word, lang="en"))


def _same_start(word: str, target: str) -> bool:
    """The first two letters agree, or the second and third are swapped ('fromat' for 'format'): a typo keeps
    the word's first letter, so 'reinstall' never meets 'uninstall'."""
    if word[:2] == target[:2]:
        return True
    return len(word) > 2 and len(target) > 2 and word[0] == target[0] and word[1:3] == target[2:0:-1]


def _typo_budget(length: int) -> int:
    return 0 if length < 5 else 1 if length < 10 else 2


class _Matcher:
    """Term lookup for one set of concepts, with every answer cached (a desk reuses its words)."""

    def __init__(self, concepts: Concepts) -> None:
        self.c = concepts
        self.part_cache: dict[tuple[str, str], bool] = {}
        self.head_cache: dict[str, tuple[tuple[Term, bool], ...]] = {}

    def part(self, pattern: str, word: str, fuzzy: bool = True) -> bool:
        key = (pattern, word) if fuzzy else ("=" + pattern, word)
        hit = self.part_cache.get(key)
        if hit is None:
            hit = self._part(pattern, word, fuzzy)
            self.part_cache[key] = hit
        return hit

    def _part(self, pattern: str, word: str, fuzzy: bool) -> bool:
        if pattern.startswith("*"):
            return word.endswith(pattern[1:]) and len(word) > len(pattern) - 1
        if pattern.endswith("*"):
            stem = pattern[:-1]
            return word.startswith(stem) or (fuzzy and len(stem) >= 7 and self._near(stem, word, prefix=True))
        return word == pattern or (fuzzy and len(pattern) >= 6 and self._near(pattern, word))

    def later_part(self, pattern: str, word: str, fuzzy: bool) -> bool:
        """A word after a term's first: the words before it vouch for it, so five letters may take a typo."""
        if self.part(pattern, word, fuzzy=False) or pattern in self.c.forms.get(word, ()):
            return True
        if not fuzzy or pattern.endswith("*") or pattern.startswith("*") or len(pattern) < 5 or len(word) < 4:
            return self.part(pattern, word, fuzzy) if fuzzy else False
        from rapidfuzz.distance import OSA

        return word[:2] == pattern[:2] and OSA.distance(word, pattern, score_cutoff=1) <= 1

    def _near(self, target: str, word: str, prefix: bool = False) -> bool:
        """One typo from five letters, two from ten; the first two letters must agree."""
        if not self.c.fuzzy or not _same_start(word, target) or self._known(word):
            return False
        if word.startswith(target) or (target.startswith(word) and not prefix):
            return False  # 'devices' is an inflection of 'device', not a typo: the term lists say which they mean
        if self.c.dictionary and _real_word(word):
            return False  # 'driver' is a word, not a typo of 'drives'; 'prompt' is not 'promote'
        budget = _typo_budget(len(target) + (2 if prefix else 0))
        if not budget:
            return False
        from rapidfuzz.distance import OSA  # lazy: the app starts without it

        if prefix:
            return any(
                OSA.distance(word[:n], target, score_cutoff=budget) <= budget
                for n in range(len(target) - 1, len(target) + 2)
            )
        return abs(len(word) - len(target)) <= budget and OSA.distance(word, target, score_cutoff=budget) <= budget

    def spelled(self, term: Term, word: str) -> str:
        """How ``word``, a typo of the term's first part, is spelled right ('dissable' -> 'disable')."""
        target = term.parts[0]
        if not target.endswith("*"):
            return target
        stem = target[:-1]
        from rapidfuzz.distance import OSA

        n = min(range(len(stem) - 1, len(stem) + 2), key=lambda k: OSA.distance(word[:k], stem))
        return stem + word[n:]

    def _exact_heads(self, word: str) -> list[Term]:
        c = self.c
        terms = list(c.exact.get(word, ()))
        terms += [t for t in c.prefix.get(word[:2], ()) if word.startswith(t.parts[0][:-1])]
        terms += [t for t in c.suffix if _ends_with(word, t.parts[0][1:], t.language)]
        if not terms and len(word) > _NAME_MIN:
            terms += self._declined_name(word)
        if len(word) >= _TAIL_MIN + _HEAD_MIN and not terms:
            terms += self._compound_tail(word)
        return terms

    def _declined_name(self, word: str) -> list[Term]:
        """A product name with a case ending, as Polish, Czech or Finnish write it ('Blackpointa', 'Sophosem',
        'Kasperskylla'): the name is a vendor term of five letters or more, the ending at most three letters."""
        for k in range(1, _ENDING_MAX + 1):
            stem = word[:-k]
            if len(stem) < _NAME_MIN:
                break
            found = [t for t in self.c.exact.get(stem, ()) if t.language == "vendor" and len(t.parts) == 1]
            if found:
                return found
        return []

    def _compound_tail(self, word: str) -> list[Term]:
        """The object a compound ends in, its own ending allowed ('skadevarebeskyttelsen' ends in
        'beskyttelse' + 'n'); the longest tail the files know wins ('virenschutz' is 'schutz', not 'utz')."""
        for i in range(_HEAD_MIN, len(word) - _TAIL_MIN + 1):
            for k in range(_ENDING_MAX + 1):
                found = self.c.tails.get(word[i : len(word) - k]) if len(word) - k - i >= _TAIL_MIN else None
                if found:
                    return found
        return []

    def _known(self, word: str) -> bool:
        """A word some term spells exactly is that word, not a typo of another ('recovery' is not 'remove')."""
        return any(not t.parts[0].endswith("*") or len(t.parts[0]) > 6 for t in self._exact_heads(word))

    def heads(self, word: str) -> tuple[tuple[Term, bool], ...]:
        """Terms whose first part this word can be, exactly (by word, stem or tail) or a typo away (True)."""
        found = self.head_cache.get(word)
        if found is not None:
            return found
        c = self.c
        exact = self._exact_heads(word)
        typos: list[Term] = []
        if c.fuzzy and len(word) >= 5 and not self._known(word):
            for start in dict.fromkeys((word[:2], word[0] + word[2])):  # 'fromatieren': 'fo' typed 'fr'
                for near in c.vocabulary.get(start, ()):
                    if self.part(near, word):
                        typos += c.exact.get(near, ())
                typos += [t for t in c.prefix.get(start, ()) if t.kind in ("a", "o") and self.part(t.parts[0], word)]
        out = tuple((t, False) for t in dict.fromkeys(exact)) + tuple(
            (t, True) for t in dict.fromkeys(typos) if t not in exact
        )
        self.head_cache[word] = out
        return out


@lru_cache(maxsize=4)
def _matcher(concepts: Concepts) -> _Matcher:
    return _Matcher(concepts)


@dataclass(frozen=True)
class Hit:
    term: Term
    start: int
    end: int  # one past the last word
    typo: bool = False  # met a typo away, not spelled as the term is


@dataclass
class Sentence:
    words: list[str]
    clause: list[int]  # each word's clause: commas and colons part clauses
    asks: bool  # ended with '?'
    hits: list[Hit]

    def of(self, kind: str, languages: frozenset[str]) -> list[Hit]:
        return [h for h in self.hits if h.term.kind == kind and _usable(h, languages)]


def _usable(hit: Hit, languages: frozenset[str]) -> bool:
    """A term counts in the step's languages; a long one (seven letters or more) spelled right, in any."""
    term = hit.term
    return term.language in languages or (not hit.typo and len(term.parts[0].strip("*")) >= 7)


def _find(matcher: _Matcher, words: list[str]) -> list[Hit]:
    hits: list[Hit] = []
    for i, word in enumerate(words):
        for term, typo in matcher.heads(word):
            end = _match_rest(matcher, term, words, i)
            if end is not None:
                hits.append(Hit(term, i, end, typo))
    return hits


def _match_rest(matcher: _Matcher, term: Term, words: list[str], at: int) -> int | None:
    pos = at + 1
    gap = False
    for part in term.parts[1:]:
        if part == "...":
            gap = True
            continue
        stop = min(len(words), pos + (_GAP + 1 if gap else 1))
        fuzzy = term.kind in ("a", "o")
        found = next((j for j in range(pos, stop) if matcher.later_part(part, words[j], fuzzy)), None)
        if found is None:
            return None
        pos, gap = found + 1, False
    return pos


# A read-only cmdlet or query names things without changing them: 'Get-Mailbox', 'reg query HKLM\\...'.
_READ_ONLY = re.compile(
    r"\b(?:get|test|find|show|measure|select|format|confirm|compare|search|where|sort|out)-[a-z][^\n|;]*"
    r"|\breg(?:\.exe)? query\b[^\n|;]*"
)
_CLAUSE = re.compile(r"[,:]|\s-\s|\(|\)")


def sentences(text: str, matcher: _Matcher) -> list[Sentence]:
    out: list[Sentence] = []
    folded = _READ_ONLY.sub(" readonlycmd ", fold(text))
    pos = 0
    for match in [*_SENTENCE.finditer(folded), None]:
        end = match.start() if match else len(folded)
        words: list[str] = []
        clause: list[int] = []
        for n, piece in enumerate(_CLAUSE.split(folded[pos:end])):
            found = _WORD.findall(piece)
            words += found
            clause += [n] * len(found)
        if words:
            asks = bool(match and match.group(1) and "?" in match.group(1))
            out.append(Sentence(words, clause, asks, _find(matcher, words)))
        elif out and match and match.group(1) and "?" in match.group(1):
            out[-1].asks = True
        pos = match.end() if match else len(folded)
    return out


# --- language and mood ---------------------------------------------------------------------------


def _scores(concepts: Concepts, sents: Sequence[Sentence]) -> dict[str, int]:
    """A vote per language: two for each of its function words, one for each word its action and object terms
    spell exactly (so 'Skrzynka ... ma zostać usunięta' is Polish, not Norwegian for its one 'ma')."""
    words = [w for s in sents for w in s.words]
    scores = {code: 2 * sum(w in markers for w in words) for code, markers in concepts.markers.items()}
    for sent in sents:
        seen: set[tuple[str, int]] = set()
        for hit in sent.hits:
            key = (hit.term.language, hit.start)
            if hit.term.kind in ("a", "o") and not hit.typo and key not in seen and hit.term.language in scores:
                seen.add(key)
                scores[hit.term.language] += 1
    return scores


def guess_languages(concepts: Concepts, sents: Sequence[Sentence]) -> frozenset[str]:
    """The languages whose function words the step uses most; all of them when it uses none."""
    scores = _scores(concepts, sents)
    best = max(scores.values(), default=0)
    if best == 0:
        return frozenset(concepts.languages) | {"vendor"}
    return frozenset(code for code, score in scores.items() if score >= max(1, best - 2)) | {"vendor"}


@dataclass(frozen=True)
class Match:
    """A hazard the step asks for: which rule, which concept pair, in which language."""

    rule: str
    action: str
    object: str
    language: str
    agree: bool = True  # whether the English sentence rules must agree (Hazard.agree)


def _before(hits: Iterable[Hit], at: int, reach: int | None = None) -> bool:
    return any(h.end <= at and (reach is None or at - h.end <= reach) for h in hits)


# 'Forwarding mail needs approval', 'Vypnutí antiviru smí schválit jen ...': a topic, not an order
_GERUND = ("ing", "ion", "ung", "cion", "ment", "ani", "eni", "uti", "nie", "cie", "minen", "else", "cao")


class _Step:
    """One step's sentences, its languages and what the mood cues say about each action in it."""

    def __init__(self, concepts: Concepts, sents: list[Sentence]) -> None:
        self.sents = sents
        self.langs = guess_languages(concepts, sents)
        self.handoffs = [(i, h.start) for i, s in enumerate(sents) for h in s.of("handoff", self.langs)]

    def instruction(self, idx: int, action: Hit, obj: Hit | None) -> bool:
        """Whether ``action`` (on ``obj``) is asked for, not forbidden, checked, asked about or handed off."""
        sent, langs, at = self.sents[idx], self.langs, action.start
        requested = sent.of("request", langs)
        if not sent.of("cancel", langs):
            after = [h for h in sent.of("negation_after", langs) if sent.clause[h.start] == sent.clause[at]]
            negations = [h for h in sent.of("negation", langs) if _reaches(sent, h, at, langs)]
            if _before(negations, at, 6) or after:
                return False
            if obj is not None and obj in sent.hits:
                near = [h for h in sent.of("negation", langs) if _reaches(sent, h, obj.start, langs)]
                if _before(near, obj.start, 4):
                    return False  # 'install the driver updates but skip any BIOS update'
        if sent.asks and not requested and not sent.of("cancel", langs):
            return False  # 'Did the user turn it off?', 'Czy użytkownik wyłączył ...?'
        first = min((h.start for h in sent.hits), default=0)
        checks = [h for h in sent.of("check", langs) if h.start <= 1 and h.start <= first]
        thens = [h.start for h in sent.of("then", langs)]
        if any(not any(c.end <= t < at for t in thens) for c in checks) and not requested:
            return False  # 'Verify that BitLocker is on', 'Sprawdź, czy zapora jest włączona'
        if _before(sent.of("state", langs), at, 0) and not sent.of("modal", langs):
            return False  # 'the firewall is disabled': a state, unless it must be
        if any(h.end <= at and sent.clause[h.start] == sent.clause[at] for h in sent.of("subordinate", langs)):
            return False  # 'check it works before removing the old entry': a time, not the step
        conditional = _in_condition(sent, action, langs)
        if conditional and (self.handoffs or sent.clause[at] != sent.clause[-1]):
            return False  # 'If the user already disabled it, turn it back on'; 'if it must go, escalate'
        if any(h.start > at and sent.clause[h.start] == sent.clause[at] for h in sent.of("owner", langs)):
            return False  # 'Desactivar BitLocker le corresponde al nivel 2': whose job it is, not the step
        if self.handoffs:
            if any(h < (idx, at) for h in self.handoffs):
                return False  # 'Escalate to L2: only they can suspend BitLocker'
            word = sent.words[at]
            leads = at == 0 or sent.clause[at - 1] != sent.clause[at] or sent.words[at - 1] in ("and", "then")
            if not leads or word.endswith(_GERUND):
                return False  # 'A BIOS update looks necessary: escalate'
        return True


def scan(text: str, concepts: Concepts | None = None) -> list[Match]:
    """Every hazard the text asks an L1 tech to do, with the concept pair that makes it one."""
    return _scan(text, concepts)[0]


def analyse(text: str, concepts: Concepts | None = None) -> tuple[list[Match], set[str], frozenset[str]]:
    """The hazards asked for; the rules whose concept pair is there but not asked for (forbidden, checked,
    handed off ...); and the languages the text is in."""
    return _scan(text, concepts)


def possible(text: str, concepts: Concepts | None = None) -> set[str]:
    """The rules one of whose action x object pairs the step names at all, in its languages, in any order: what
    the concepts could have judged ('Afinstaller ... og installer den nye' names no 'run' x 'script')."""
    concepts = concepts or default_concepts()
    sents = sentences(text, _matcher(concepts))
    langs = guess_languages(concepts, sents)
    named = {(h.term.kind, h.term.concept) for s in sents for h in s.hits if _usable(h, langs)}
    actions = {c for k, c in named if k == "a"}
    objects = {c for k, c in named if k == "o"}
    return {
        h.rule
        for h in concepts.hazards
        if any(a in actions and o in objects for a, o in h.pairs) or (h.alone & objects and actions)
    }


def _scan(text: str, concepts: Concepts | None) -> tuple[list[Match], set[str], frozenset[str]]:
    concepts = concepts or default_concepts()
    matcher = _matcher(concepts)
    sents = sentences(text, matcher)
    if not sents:
        return [], set(), frozenset()
    step = _Step(concepts, sents)
    langs = step.langs
    in_step = {h.term.concept for s in sents for h in s.hits if _usable(h, langs)}
    found: dict[tuple[str, bool], Match] = {}  # by rule and whether English must agree: one of each may stand
    excuse: set[str] = set()
    unpaired: set[str] = set()
    for idx, sent in enumerate(sents):
        actions = sorted(sent.of("a", langs), key=lambda h: h.term.language not in langs)
        objects = sorted(sent.of("o", langs), key=lambda h: h.term.language not in langs)
        if not objects and actions and idx > 0 and (not sents[idx - 1].asks or _offers_choice(sents[idx - 1], langs)):
            objects = sents[idx - 1].of("o", langs)  # 'Open Security. Turn it off.', 'What now? Disable it.'
        sent_concepts = {h.term.concept for h in sent.hits if _usable(h, langs)}
        reach: dict[int, list[Hit]] = {}  # each action's objects, the same for every hazard
        for hazard in concepts.hazards:
            key = (hazard.rule, hazard.agree)
            if key in found:
                continue
            if not objects and any(a.term.concept == pa for a in actions for pa, _ in hazard.pairs):
                unpaired.add(hazard.rule)  # an action with no object in reach: the concepts cannot excuse it
            if hazard.vetoes & sent_concepts:
                if any((a.term.concept, o.term.concept) in hazard.pairs for a in actions for o in objects):
                    excuse.add(hazard.rule)  # 'ask the user to reset their own password'
                continue
            if hazard.requires and not hazard.requires & in_step:
                continue
            for a in actions:
                if a.term.concept not in hazard.actions:
                    continue
                if id(a) not in reach:
                    reach[id(a)] = _in_reach(sent, a, objects, langs)
                for o in reach[id(a)]:
                    if (a.term.concept, o.term.concept) not in hazard.pairs or o.start <= a.start < o.end:
                        continue
                    if (
                        o in sent.hits
                        and _in_condition(sent, o, langs)
                        and sent.clause[o.start] != sent.clause[a.start]
                    ):
                        continue  # 'If the installer says the antivirus must go, stop and escalate'

                    if o.end == a.start and a.term.language == "en" and o in sent.hits:
                        continue  # 'a recovery key request', 'the firewall update': a noun, not an order
                    if a.term.concept == "off" and not (
                        a.start > 0 and sent.clause[a.start - 1] != sent.clause[a.start]
                    ):
                        continue  # 'Defender: off' is an order; 'off' inside a sentence is a particle
                    if a.term.concept == "ask" and _asks_to_do(sent, a, o, langs):
                        excuse.add(hazard.rule)
                        continue
                    if step.instruction(idx, a, o):
                        lang = a.term.language if a.term.language != "vendor" else o.term.language
                        found[key] = Match(hazard.rule, a.term.concept, o.term.concept, lang, hazard.agree)
                        break
                    excuse.add(hazard.rule)
                if key in found:
                    break
            if key in found:
                continue
            for o in objects if sent.of("a", langs) else ():
                if o.term.concept in hazard.alone:
                    if step.instruction(idx, o, None):
                        found[key] = Match(hazard.rule, "", o.term.concept, o.term.language, hazard.agree)
                        break
                    excuse.add(hazard.rule)
    return list(found.values()), excuse - {rule for rule, _ in found} - unpaired, langs


def _in_reach(sent: Sentence, action: Hit, objects: list[Hit], langs: frozenset[str]) -> list[Hit]:
    """The objects of the action's clause; when it names none ('then turn it off'), the sentence's. An object
    after 'before' or 'after' is a time ('suspend it before the BIOS update'), not what the action acts on."""
    here = [o for o in objects if o in sent.hits]
    if not here:
        return objects  # the object was in the sentence before
    times = [h for h in sent.of("subordinate", langs) if h.start >= action.end]
    here = [
        o for o in here if not any(h.end <= o.start and sent.clause[h.start] == sent.clause[o.start] for h in times)
    ]
    own = [o for o in here if sent.clause[o.start] == sent.clause[action.start]]
    return own or here


def _offers_choice(question: Sentence, langs: frozenset[str]) -> bool:
    """'What should we do about the antivirus?' offers choices; 'Has it been paused?' wants a state back."""
    return any(h.start <= 1 for h in question.of("choice", langs))


_CUE_WORDS = frozenset({"negation", "cancel", "modal", "request", "state", "then", "condition", "infinitive"})
_CONTENT = 5  # letters from which a word in a negation's clause is what it forbids ('reboot', 'starta')


def _bound(sent: Sentence, negation: Hit, langs: frozenset[str]) -> bool:
    """A negation whose clause names what it forbids stays there: 'Nie restartuj, tylko wyłącz antywirusa' forbids
    the restart; 'Never, under any circumstances, disable it' forbids what follows."""
    clause = sent.clause[negation.start]
    cues = {i for h in sent.hits if h.term.kind in _CUE_WORDS and _usable(h, langs) for i in range(h.start, h.end)}
    return any(
        sent.clause[i] == clause and i not in cues and len(word) >= _CONTENT
        for i, word in enumerate(sent.words)
        if not negation.start <= i < negation.end
    )


def _reaches(sent: Sentence, negation: Hit, at: int, langs: frozenset[str]) -> bool:
    """Whether a negation forbids the word at ``at``: in its own clause, yes; from an earlier clause only a long
    one ('never', 'niemals', 'under no circumstances') that names nothing of its own. A lone short one ('No:')
    answers a question and forbids nothing."""
    short = len(negation.term.parts[0]) < 4 and len(negation.term.parts) == 1
    if short and sent.clause.count(sent.clause[negation.start]) == 1:
        return False
    if sent.clause[negation.start] == sent.clause[at]:
        return True
    return not short and not _bound(sent, negation, langs)


def _in_condition(sent: Sentence, hit: Hit, langs: frozenset[str]) -> bool:
    return any(
        h.end <= hit.start and sent.clause[h.start] == sent.clause[hit.start] for h in sent.of("condition", langs)
    )


def _asks_to_do(sent: Sentence, ask: Hit, obj: Hit, langs: frozenset[str]) -> bool:
    """'Ask the user to sign in with their password': the user is asked to do something with the secret,
    not to give it, unless a disclosing verb ('to read out', 'que te diga') follows."""
    own = frozenset({ask.term.language})
    between = [h for h in sent.of("infinitive", own) if ask.end <= h.start < obj.start and h.start - ask.end <= 4]
    if not between:
        return False
    return not any(h.start > ask.start for h in sent.of("disclose", own))


# What a product name is, in words the English sentence rules know.
_GENERIC = {
    "security_tool": "antivirus",
    "mdm": "antivirus",
    "encryption": "bitlocker",
    "mfa": "mfa",
    "remote_tool": "teamviewer",
}


def mainly_english(text: str, concepts: Concepts | None = None) -> bool:
    """Whether English function words lead the step: then the English sentence rules judge it."""
    concepts = concepts or default_concepts()
    scores = _scores(concepts, sentences(text, _matcher(concepts)))
    return scores.get("en", 0) > max((v for k, v in scores.items() if k != "en"), default=0)


def english_view(text: str, concepts: Concepts | None = None) -> str | None:
    """For an English step: the text with its typos spelled right and product names said generically
    ('Dissable the Crowdstrke sensor' -> 'disable the antivirus sensor'), so the English sentence rules
    can judge it; None when the step is not mainly English or nothing needed rewriting."""
    concepts = concepts or default_concepts()
    matcher = _matcher(concepts)
    sents = sentences(text, matcher)
    scores = _scores(concepts, sents)
    if not sents or scores.get("en", 0) < max(scores.values(), default=0) or not scores.get("en"):
        return None
    swaps: dict[str, str] = {}
    for sent in sents:
        for hit in sent.hits:
            if hit.term.language == "vendor" and hit.term.concept in _GENERIC:
                swaps[" ".join(sent.words[hit.start : hit.end])] = _GENERIC[hit.term.concept]
            elif hit.typo and hit.term.kind in ("a", "o") and hit.term.language in ("en", "vendor"):
                swaps[sent.words[hit.start]] = matcher.spelled(hit.term, sent.words[hit.start])
    if not swaps:
        return None
    view = _READ_ONLY.sub(" readonlycmd ", fold(text))
    for old in sorted(swaps, key=len, reverse=True):
        view = re.sub(rf"\b{re.escape(old)}\b", swaps[old], view)
    return view


# Each concept in the English words the sentence rules know best.
_CANONICAL = {
    "disable": "disable",
    "off": "disable",
    "uninstall": "uninstall",
    "decrypt": "decrypt",
    "wipe": "wipe",
    "delete": "delete",
    "ask": "ask for",
    "exempt": "exclude",
    "add": "add",
    "grant": "grant",
    "make": "make",
    "install": "install",
    "download": "download",
    "run": "run",
    "edit": "change",
    "forward": "forward",
    "flash": "flash",
    "update": "update",
    "enable": "enable",
    "security_tool": "the antivirus",
    "mdm": "the antivirus",
    "av_exclusion": "the exclusions",
    "encryption": "bitlocker",
    "disk": "the disk",
    "partition": "the partition",
    "factory_reset": "a factory reset",
    "user_data": "the user profile",
    "credential": "the password",
    "mfa": "mfa",
    "admin": "the local administrators group",
    "script": "the script",
    "source": "from the internet",
    "registry": "the registry",
    "remote_tool": "teamviewer",
    "root_cert": "the root certificate",
    "external_mail": "a personal gmail address",
    "firmware": "the bios",
    "updates": "windows updates",
    "macro": "macros",
    "rdp": "remote desktop",
    "exec_policy": "the execution policy",
}


def canonical_view(text: str, concepts: Concepts | None = None) -> str:
    """The text with every action and object said in the concept's plain English word ('Put the GravityZone
    agent into passive mode' -> 'disable the antivirus agent'), sentence by sentence, for a second opinion
    of the English sentence rules on a hazard the concepts found."""
    concepts = concepts or default_concepts()
    matcher = _matcher(concepts)
    out = []
    sents = sentences(text, matcher)
    langs = guess_languages(concepts, sents)
    for sent in sents:
        words: list[str | None] = list(sent.words)
        usable = [h for h in sent.hits if _usable(h, langs)]  # Swedish 'be' (ask) is no English 'be'
        for hit in sorted(usable, key=lambda h: h.start - h.end):
            word = _CANONICAL.get(hit.term.concept)
            if word is None or hit.term.kind not in ("a", "o") or words[hit.start] is None:
                continue
            span = range(hit.start, hit.end) if "..." not in hit.term.parts else range(hit.start, hit.start + 1)
            for i in span:
                words[i] = None
            words[hit.start] = word
            if "..." in hit.term.parts and hit.end - 1 > hit.start:
                words[hit.end - 1] = None  # 'turn ... off': the particle goes with the verb
        said = [
            ("," if i and sent.clause[i] != sent.clause[i - 1] else "") + " " + w  # clauses stay clauses
            for i, w in enumerate(words)
            if w
        ]
        out.append("".join(said).strip(" ,") + ("?" if sent.asks else "."))
    return " ".join(out)


def describe(match: Match, concepts: Concepts | None = None) -> str:
    """'disable x security tool (Spanish)': the concept pair in the tech's terms, never the step's words."""
    concepts = concepts or default_concepts()
    pair = " x ".join(c.replace("_", " ") for c in (match.action, match.object) if c)
    return f"{pair} ({concepts.languages.get(match.language, match.language)})"
