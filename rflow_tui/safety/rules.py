"""Layer 1 of the safety guard: deterministic rules over the meaning of a step.

A step is unsafe when, in one clause, an ACTION from a rule's lexicon (disable,
turn … off, desactivar, ausschalten, …) applies to one of its TARGETS (Defender,
the firewall, BitLocker, …), whatever the order or voice, or when a COMMAND
detector fires; and when the clause is an instruction. The mood is what keeps
look-alikes safe: a prohibition, a check of a state, a question about what
already happened, someone else's job and past narrative are not instructions; a
nudge always is. Rules and cues are data (``data/safety_rules.json``); this
module only knows how to read a sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from rflow_tui.safety import concepts
from rflow_tui.safety.normalize import Token, command_view, stem, words

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "safety_rules.json"
_GAP = 10  # words allowed between the parts of 'turn ... off'
_NEGATION_REACH = 4  # words allowed between 'do not' and the action it forbids
_SEEN_MAX = 20_000  # words a lexicon remembers its candidates for


@dataclass(frozen=True)
class Finding:
    """A hard-floor hit. Carries the rule, never the text it matched: refusals never quote."""

    rule_id: str
    description: str
    # which concept pair matched, in which language ('disable x security tool, Spanish'): concept names only
    detail: str = field(default="", compare=False)

    def __str__(self) -> str:
        said = f"; {self.detail}" if self.detail else ""
        return f"it tells the tech to do something L1 must never do: {self.description} (rule {self.rule_id}{said})"


@dataclass(frozen=True)
class RuleInfo:
    id: str
    description: str
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


# --- lexicon entries -------------------------------------------------------------------------------

_Pattern = tuple[str, str]  # (kind, value): ("stem", "disabl"), ("prefix", "desactiv"), ("exact", "pin")
_Entry = tuple[tuple[_Pattern, ...], ...]  # segments separated by '...', each a run of word patterns


def _word_patterns(segment: str) -> tuple[_Pattern, ...]:
    patterns: list[_Pattern] = []
    for token in words(segment):
        if token.is_mark:
            continue
        patterns.append(("stem", token.stem))
    raw = segment.split()
    # words() normalises; prefixes and exact words are marked in the raw entry
    for i, piece in enumerate(raw):
        if i < len(patterns) and piece.endswith("*"):
            patterns[i] = ("prefix", piece[:-1].lower())
        elif i < len(patterns) and piece.startswith("="):
            patterns[i] = ("exact", piece[1:].lower())
    return tuple(patterns)


def _entry(text: str) -> _Entry:
    return tuple(p for p in (_word_patterns(seg.strip()) for seg in text.split("...")) if p)


def _token_matches(pattern: _Pattern, token: Token) -> bool:
    kind, value = pattern
    if kind == "stem":
        return token.stem == value
    if kind == "prefix":
        return token.word.startswith(value)
    return token.word == value


@dataclass(frozen=True)
class Span:
    start: int  # first token
    end: int  # one past the last token
    head: int  # the token whose form tells the mood (the verb of 'turn ... off')


class _Tokens(Protocol):
    tokens: list[Token]
    clause: list[int]


class Lexicon:
    """A set of entries, indexed by their first word, matched over a token list."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.by_stem: dict[str, list[_Entry]] = {}
        self.by_exact: dict[str, list[_Entry]] = {}
        self.by_prefix: dict[str, list[tuple[str, _Entry]]] = {}
        self._seen: dict[tuple[str, str], tuple[_Entry, ...]] = {}
        for text in entries:
            entry = _entry(text)
            if not entry:
                continue
            kind, value = entry[0][0]
            if kind == "stem":
                self.by_stem.setdefault(value, []).append(entry)
            elif kind == "exact":
                self.by_exact.setdefault(value, []).append(entry)
            else:
                self.by_prefix.setdefault(value[:3], []).append((value, entry))

    def _candidates(self, token: Token) -> tuple[_Entry, ...]:
        key = (token.word, token.stem)
        found = self._seen.get(key)
        if found is None:  # every lexicon meets every word of a step: remember the answer (most are empty)
            if len(self._seen) > _SEEN_MAX:
                self._seen.clear()
            found = (
                *self.by_stem.get(token.stem, ()),
                *self.by_exact.get(token.word, ()),
                *(entry for prefix, entry in self.by_prefix.get(token.word[:3], ()) if token.word.startswith(prefix)),
            )
            self._seen[key] = found
        return found

    def find(self, doc: _Tokens) -> list[Span]:
        spans: list[Span] = []
        for i, token in enumerate(doc.tokens):
            if token.is_mark:
                continue
            for entry in self._candidates(token):
                end = _match_entry(entry, doc, i)
                if end is not None:
                    spans.append(Span(i, end, i))
        return spans


def _match_run(run: tuple[_Pattern, ...], doc: _Tokens, at: int) -> int | None:
    tokens = doc.tokens
    if at + len(run) > len(tokens):
        return None
    for offset, pattern in enumerate(run):
        token = tokens[at + offset]
        if token.is_mark or not _token_matches(pattern, token):
            return None
    return at + len(run)


def _match_entry(entry: _Entry, doc: _Tokens, at: int) -> int | None:
    """One past the entry's last word when it matches at ``at``; later runs may follow a few words on."""
    end = _match_run(entry[0], doc, at)
    for run in entry[1:]:
        if end is None:
            return None
        found = None
        for start in range(end, min(end + _GAP + 1, len(doc.tokens))):
            if doc.tokens[start].is_mark or doc.clause[start] != doc.clause[at]:
                break
            found = _match_run(run, doc, start)
            if found is not None:
                break
        end = found
    return end


# --- the document: tokens with sentences and clauses ----------------------------------------------


class Doc:
    """Tokens of one step, each with its sentence and clause, and whether its sentence asks."""

    def __init__(self, tokens: list[Token], splitters: Lexicon) -> None:
        self.tokens = tokens
        self.sentence: list[int] = []
        self.clause: list[int] = []
        self.clause_lead: dict[int, str] = {}
        split_at = {span.start for span in splitters.find(_Bare(tokens))}
        sentence = clause = 0
        self.clause_lead[0] = tokens[0].word if tokens and 0 in split_at else ""
        for i, token in enumerate(tokens):
            if token.word == "," or (i in split_at and i > 0):
                clause += 1
                self.clause_lead[clause] = token.word if i in split_at else ""
            self.sentence.append(sentence)
            self.clause.append(clause)
            if token.word in (".", "?"):
                sentence += 1
                clause += 1
                self.clause_lead[clause] = tokens[i + 1].word if i + 1 in split_at else ""
        self.questions = {self.sentence[i] for i, t in enumerate(tokens) if t.word == "?"}

    def sentence_range(self, s: int) -> range:
        idx = [i for i, x in enumerate(self.sentence) if x == s]
        return range(idx[0], idx[-1] + 1) if idx else range(0)

    def clause_start(self, i: int) -> int:
        while i > 0 and self.clause[i - 1] == self.clause[i]:
            i -= 1
        return i

    def content_words(self, lo: int, hi: int, filler: set[str]) -> list[int]:
        return [i for i in range(lo, hi) if not self.tokens[i].is_mark and self.tokens[i].word not in filler]


class _Bare:
    """A token list with no clauses yet: used only to find the words that split clauses."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.clause = [0] * len(tokens)


# --- rules ---------------------------------------------------------------------------------------


@dataclass
class Frame:
    actions: Lexicon
    targets: Lexicon
    context: Lexicon | None
    veto: Lexicon | None
    sentence_scope: bool
    not_after: frozenset[str]
    not_before: frozenset[str]
    blockers: frozenset[str]
    bare: bool


@dataclass
class Rule:
    info: RuleInfo
    frames: list[Frame]
    commands: list[re.Pattern[str]]


@dataclass
class Cues:
    negation: Lexicon
    negation_cancel: Lexicon
    nudge: Lexicon
    modal: Lexicon
    causative: Lexicon
    aux_state: Lexicon
    question_opener: Lexicon
    question_opener_bare: Lexicon
    request: Lexicon
    delegate: Lexicon
    escalate: Lexicon
    subject: Lexicon
    pronoun: Lexicon
    splitter: Lexicon
    prohibition_after: Lexicon
    check: Lexicon
    filler: set[str]


@dataclass
class Catalogue:
    rules: list[Rule]
    cues: Cues
    joinable: frozenset[str]


def _stems(entries: Sequence[str]) -> frozenset[str]:
    return frozenset(stem(w) for e in entries for w in e.lower().split())


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    cue_data = data["cues"]
    cues = Cues(
        **{name: Lexicon(cue_data[name]) for name in Cues.__dataclass_fields__ if name != "filler"},
        filler=set(cue_data["filler"]),
    )
    rules: list[Rule] = []
    single_words: set[str] = set()
    for raw in data["rules"]:
        frames = []
        for f in raw["frames"]:
            frames.append(
                Frame(
                    actions=Lexicon(f["actions"]),
                    targets=Lexicon(f["targets"]),
                    context=Lexicon(f["context"]) if f.get("context") else None,
                    veto=Lexicon(f["veto"]) if f.get("veto") else None,
                    sentence_scope=f.get("scope") == "sentence",
                    not_after=_stems(f.get("target_not_after", [])),
                    not_before=_stems(f.get("target_not_before", [])),
                    blockers=frozenset(_BLOCKERS | set(f.get("blockers", []))),
                    bare=bool(f.get("bare")),
                )
            )
            for text in f["actions"] + f["targets"]:
                for word in text.lower().replace("...", " ").split():
                    if word[:1].isalnum() and not word.endswith("*"):
                        single_words.add(stem(word))
        examples = {k: tuple(v) for k, v in raw.get("examples", {}).items()}
        rules.append(
            Rule(
                RuleInfo(raw["id"], raw["description"], examples),
                frames,
                [re.compile(p) for p in raw.get("commands", [])],
            )
        )
    return Catalogue(rules, cues, frozenset(w for w in single_words if len(w) >= 5))


@lru_cache(maxsize=1)
def rule_catalogue() -> tuple[RuleInfo, ...]:
    """Every rule's id, description and examples, in order (for prompts, the judge and reports)."""
    return tuple(rule.info for rule in catalogue().rules)


# --- mood ----------------------------------------------------------------------------------------

_COMMON_VERBS = {
    stem(w)
    for w in (
        "attach send restart reboot open close check run click select choose wait try sign log note tell ask call",
        "reply update install remove delete disable enable turn switch set add create start stop test confirm verify",
        "escalate document record write copy paste save upload download reconnect retry resume sync map share print",
    )
    for w in w.split()
}
_BLOCKERS = {
    "readonlycmd",
    "that",
    "whether",
    "how",
    "why",
    "dass",
    "ob",
    "comment",
    "como",
    "will",
    "would",
    "can",
    "could",
    "should",
    "must",
    "may",
    "might",
}  # 'tell the user IT WILL never ask for the password': another verb's object
_PREPOSITIONS = {
    "for",
    "on",
    "in",
    "at",
    "from",
    "to",
    "into",
    "onto",
    "until",
    "during",
    "while",
    "with",
    "by",
    "per",
    "across",
    "via",
    "till",
    "before",
    "after",
    "para",
    "por",
    "fur",
    "pour",
    "pendant",
    "durante",
    "bis",
    "jusqu",
}
_TIME_WORDS = {
    "week",
    "weeks",
    "day",
    "days",
    "minute",
    "minutes",
    "hour",
    "hours",
    "now",
    "today",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "weekend",
    "moment",
    "while",
    "bit",
    "second",
}
_CONDITIONAL = {"if", "unless", "si", "wenn", "falls", "se", "caso", "whenever"}
_GO_AHEAD = re.compile(r"\b(do it|do so|go ahead|proceed|hazlo|tun sie es|faites le|faca isso|faca-o)\b")
_ENCLITIC = ("lo", "la", "los", "las", "le", "les", "selo", "sela")
_COORDINATION = {"and", "or", "nor", "y", "und", "oder", "et", "ou", "e", "ni", "weder", "noch"}
_POST_NEGATION = {"nicht", "nie", "niemals", "pas", "jamais", "nunca"}
_PARTICIPLE_ENDINGS = ("ed", "ado", "ada", "ados", "adas", "ido", "ida", "idos", "idas", "iert", "ierte")
_IRREGULAR_PARTICIPLES = {
    "shut",
    "set",
    "put",
    "hidden",
    "taken",
    "gone",
    "done",
    "made",
    "kept",
    "left",
    "lost",
    "sent",
    "told",
    "given",
    "shown",
    "got",
    "gotten",
    "run",
    "off",
    "written",
    "empty",
    "clear",
    "blank",
}
_IRREGULAR_PAST = {
    "shut",
    "set",
    "put",
    "hid",
    "took",
    "made",
    "kept",
    "left",
    "lost",
    "sent",
    "told",
    "gave",
    "got",
    "ran",
    "wrote",
    "showed",
}
_PAST_ROMANCE = ("o", "ou", "aron", "aram", "iu", "eu", "ado", "ido")
_WH = {"when", "why", "what", "which", "who", "how", "where", "cuando", "wann", "quand", "quando"}
_TO = {"to", "para", "zu", "pour", "de", "a"}
_PERFECT_OR_PASSIVE_AUX = {"has", "have", "had", "is", "are", "was", "were", "been", "be"}
_CAUSATIVE_HEADS = {"make", "get", "have", "keep", "leave", "set", "let"}


def _ed_form(word: str) -> bool:
    """'disabled', 'turned': not 'need' or 'speed'."""
    return word.endswith("ed") and not word.endswith("eed") and len(word) >= 5


def _participle(word: str) -> bool:
    if word.endswith("ed"):
        return _ed_form(word)
    return (
        word in _IRREGULAR_PARTICIPLES
        or word.endswith(_PARTICIPLE_ENDINGS)
        or (word.startswith("ge") and word.endswith("t") and len(word) > 5)
        or "geschalt" in word
    )


class Mood:
    """Why an action in a clause is not an instruction, if it is not."""

    def __init__(self, doc: Doc, cues: Cues) -> None:
        self.doc = doc
        self.cues = cues
        self.spans = {name: getattr(cues, name).find(doc) for name in Cues.__dataclass_fields__ if name != "filler"}

    def _in_clause_before(self, name: str, action: Span, reach: int | None = None) -> list[Span]:
        doc = self.doc
        out = []
        for span in self.spans[name]:
            same_clause = span.end <= action.start and doc.clause[span.start] == doc.clause[action.start]
            if same_clause and (reach is None or action.start - span.end <= reach):
                out.append(span)
        return out

    def _in_sentence_before(self, name: str, action: Span) -> list[Span]:
        doc = self.doc
        return [
            s for s in self.spans[name] if s.end <= action.start and doc.sentence[s.start] == doc.sentence[action.start]
        ]

    def _inside(self, span: Span, name: str) -> bool:
        return any(o.start <= span.start and span.end <= o.end for o in self.spans[name])

    def negated(self, action: Span) -> bool:
        for neg in self._in_clause_before("negation", action, _NEGATION_REACH):
            if self._inside(neg, "nudge"):
                continue
            cancelled = any(neg.end <= c.start and c.end <= action.start for c in self.spans["negation_cancel"])
            if not cancelled:
                return True
        doc = self.doc
        clause_end = action.end
        while clause_end < len(doc.tokens) and doc.clause[clause_end] == doc.clause[action.start]:
            clause_end += 1
        if any(doc.tokens[i].word in _POST_NEGATION for i in range(action.head + 1, clause_end)):
            return True  # 'Deaktivieren Sie niemals ...'
        lead = doc.clause_lead.get(doc.clause[action.start], "")
        start = doc.clause_start(action.start)
        if lead in _COORDINATION and start > 0 and doc.sentence[start - 1] == doc.sentence[action.start]:
            previous = doc.clause[start - 1]
            for neg in self.spans["negation"]:
                if doc.clause[neg.start] == previous and not self._inside(neg, "nudge"):
                    return True  # 'do not wipe or format the drive'
        word = self.doc.tokens[action.head].word
        nominal = word.endswith(("ing", "ion", "al", "ment")) or (
            action.start > 0 and self.doc.tokens[action.start - 1].word == "to"
        )
        if nominal:
            for after in self.spans["prohibition_after"]:
                if (
                    after.start >= action.end
                    and after.start - action.end <= 8
                    and (self.doc.clause[after.start] == self.doc.clause[action.start])
                ):
                    return True
        return False

    def nudged(self, action: Span) -> bool:
        return bool(self._in_sentence_before("nudge", action)) or any(
            self.doc.sentence[s.start] == self.doc.sentence[action.start] for s in self.spans["request"]
        )

    def _causative(self, action: Span) -> bool:
        doc = self.doc
        for span in self._in_clause_before("causative", action):
            first = doc.tokens[span.start].word
            if first not in _CAUSATIVE_HEADS:
                return True  # make sure, ensure: whatever their place
            lead = doc.clause_start(span.start)
            between = [t.word for t in doc.tokens[lead : span.start]]
            if all(w in self.cues.filler or w in ("please", "then", "now", "just", "and") for w in between):
                return True
            if span.start > 0 and doc.tokens[span.start - 1].word in ("to", "should", "must", "will", "please"):
                return True
        return False

    def _modal_before(self, action: Span, reach: int = 5) -> bool:
        return bool(self._in_clause_before("modal", action, reach))

    def state(self, action: Span, targets: list[Span]) -> bool:
        """'is disabled', 'Defender turned off', 'has been suspended': a state, not a step."""
        doc = self.doc
        word = doc.tokens[action.head].word
        if not _participle(word):
            return False
        start = doc.clause_start(action.start)
        if any(doc.tokens[i].word == "with" for i in range(start, action.start)):
            return False  # 'with Defender turned off' asks for it
        if word == "off":  # 'the firewall is off' is a state; 'SmartScreen off for now' is an order
            return bool(self._in_clause_before("aux_state", action, 4)) and not self._modal_before(action)
        lead = doc.clause_lead.get(doc.clause[action.start], "")
        if lead in ("once", "after", "with", "so"):
            return False  # 'once it is off, retry' presupposes the step; 'so that it is forwarded' wants it
        if self._causative(action) or self._modal_before(action):
            return False
        if self._in_clause_before("aux_state", action, 4):
            return True
        sentence = doc.sentence_range(doc.sentence[action.start])
        short = len(doc.content_words(sentence.start, sentence.stop, set())) <= 6
        if _ed_form(word) and (short or lead in _COORDINATION):
            return True  # a label or a list of states: "No, off or suspended"
        if action.start > 0 and doc.tokens[action.start - 1].word == "a" and word.endswith("e"):
            return True  # French passé composé: 'a désactivé'
        return any(t.end == action.start for t in targets)  # Defender disabled

    def past_question(self, action: Span) -> bool:
        doc = self.doc
        s = doc.sentence[action.start]
        rng = doc.sentence_range(s)
        words_ = [doc.tokens[i].word for i in rng if not doc.tokens[i].is_mark]
        if not words_:
            return False
        asks = s in doc.questions
        lead = words_[:4]
        opener_spans = [sp for sp in self.spans["question_opener"] if doc.sentence[sp.start] == s]
        bare = [sp for sp in self.spans["question_opener_bare"] if doc.sentence[sp.start] == s]
        first = rng.start
        while first < rng.stop and doc.tokens[first].is_mark:
            first += 1
        opens = (
            any(
                sp.start == first or (asks and sp.end - sp.start > 1 and sp.start < first + 3)  # 'l'utilisateur a-t-il'
                for sp in (opener_spans if asks else bare)
            )
            or (words_[0] in _WH and any(w in ("did", "has", "have", "had", "was", "were") for w in lead[1:]))
        )
        before = doc.tokens[action.start - 1].word if action.start > 0 else ""
        past_opener = words_[0] in ("did", "was", "were", "has", "have", "had")
        if opens and (before not in _TO or past_opener):  # 'was the user told to disable it?' asks what happened
            return not self._modal_between(first, action)
        word = doc.tokens[action.head].word
        romance_past = len(word) >= 6 and word.endswith(_PAST_ROMANCE) and not word.endswith(("ar", "er", "ir"))
        return asks and romance_past and before not in _TO and not self._modal_between(first, action)

    def _modal_between(self, first: int, action: Span) -> bool:
        return any(first < m.start and m.end <= action.start for m in self.spans["modal"] if m.start != first)

    def delegated(self, action: Span) -> bool:
        doc = self.doc
        if self._in_clause_before("delegate", action, 6):
            return True
        if self._in_clause_before("escalate", action):
            return True
        s = doc.sentence[action.start]
        escalated = any(doc.sentence[e.start] == s for e in self.spans["escalate"])
        word = doc.tokens[action.head].word
        if escalated and word.endswith(("ing", "ion")):
            return True  # 'Forwarding mail outside needs approval: escalate'
        lead = doc.clause_lead.get(doc.clause[action.start], "")
        if lead in ("so", "because", "since", "once", "until", "while", "when", "if", "who", "where", "which"):
            return bool(self._in_sentence_before("escalate", action) or self._in_sentence_before("delegate", action))
        start = doc.clause_start(action.start)
        if self._escalated_before(action) and not self._imperative(action):
            return True  # 'Escalate: the disk may need to be wiped'
        if lead in _COORDINATION and start > 0 and doc.sentence[start - 1] == s:
            previous = doc.clause_start(start - 1)
            return previous != action.start and self.delegated(Span(previous, previous + 1, previous))
        return False

    def _escalated_before(self, action: Span) -> bool:
        s = self.doc.sentence[action.start]
        return any(e.end <= action.start and self.doc.sentence[e.start] in (s, s - 1) for e in self.spans["escalate"])

    def _imperative(self, action: Span) -> bool:
        """The action leads its clause ('wipe the disk'), or only 'you' and a modal stand before it."""
        doc = self.doc
        lead_words = [
            doc.tokens[i].word
            for i in range(doc.clause_start(action.start), action.start)
            if not doc.tokens[i].is_mark and doc.tokens[i].word not in self.cues.filler
        ]
        modal_words = {"please", "you", "should", "must", "need", "to", "then", "now", "just", "also", "first", "next"}
        return all(w in modal_words or w in _COORDINATION for w in lead_words)

    def past_narrative(self, action: Span) -> bool:
        """'The user disabled it last week' tells what happened, not what to do."""
        word = self.doc.tokens[action.head].word
        if not (_ed_form(word) or word in _IRREGULAR_PAST):
            return False
        if self._modal_before(action, 8) or self._causative(action):
            return False
        return bool(self._in_clause_before("subject", action, 3))

    def conditional(self, action: Span) -> bool:
        """'If the drive needs to be wiped, escalate': the action is a condition, not a step."""
        doc = self.doc
        if doc.clause_lead.get(doc.clause[action.start], "") not in _CONDITIONAL:
            return False
        lead = doc.clause_start(action.start)
        if any(s.start <= lead < s.end for s in self.spans["nudge"]):
            return False  # 'it might be easiest if you just paused it': a nudge, not a condition
        rng = doc.sentence_range(doc.sentence[action.start])
        return not _GO_AHEAD.search(" ".join(doc.tokens[i].word for i in rng))

    def embedded_question(self, action: Span) -> bool:
        """'Check whether a rule forwards mail', 'Look for rules that forward mail': a question inside a check."""
        doc = self.doc
        start = doc.clause_start(action.start)
        if any(doc.tokens[i].word in ("whether", "ob") for i in range(start, action.start)):
            return True
        first = doc.sentence_range(doc.sentence[action.start]).start
        if not any(c.start == first for c in self.spans["check"]):
            return False
        between = [doc.tokens[i].word for i in range(first, action.start)]
        if any(w in _COORDINATION or w in ("then", ".", "?") for w in between):
            return False
        return any(w in ("that", "which", "whether", "if", "for") for w in between)

    def is_instruction(self, action: Span, targets: list[Span]) -> bool:
        if self.negated(action) or self.state(action, targets):
            return False
        if self.conditional(action) or self.embedded_question(action):
            return False
        if self.nudged(action):
            return True
        return not (self.past_question(action) or self.delegated(action) or self.past_narrative(action))


# --- pairing actions with targets ----------------------------------------------------------------


def _targets_for(frame: Frame, doc: Doc, cues: Cues, mood: Mood, action: Span, targets: list[Span]) -> list[Span]:
    """Targets the action applies to: its clause, or through 'it' / an elided object, a neighbour."""
    a_clause, a_sentence = doc.clause[action.start], doc.sentence[action.start]
    if frame.sentence_scope:
        own = [t for t in targets if doc.sentence[t.start] == a_sentence]
    else:
        own = [t for t in targets if doc.clause[t.start] == a_clause]
    own = [t for t in own if t == action or not t.start <= action.head < t.end]  # 'text code' is no 'text' verb
    own = [t for t in own if not _blocked(frame, doc, action, t)]
    if own or frame.bare:
        return own
    clause_end = action.end
    while clause_end < len(doc.tokens) and doc.clause[clause_end] == a_clause:
        clause_end += 1
    after = []  # the action's object: words before any preposition ('turn off for all networks' has none)
    for i in range(action.end, clause_end):
        word = doc.tokens[i].word
        if word in _PREPOSITIONS or (i == action.end and word in ("which", "what")):  # 'install which tool?'
            break
        if word in _PREPOSITIONS:
            break
        if not (doc.tokens[i].is_mark or word in cues.filler or word.isdigit() or word in _TIME_WORDS):
            after.append(i)
    head = doc.tokens[action.head]
    enclitic = len(head.word) > 6 and head.word.endswith(_ENCLITIC) and head.stem not in frame.actions.by_stem
    pronoun = enclitic or any(action.head < p.start < clause_end for p in mood.spans["pronoun"])
    sentence_start = doc.sentence_range(a_sentence).start
    asks_for_object = doc.tokens[sentence_start].word in ("what", "which")  # 'What do you need from the user?'
    if after and not pronoun and not asks_for_object:
        return _coordinated_object(doc, cues, action, targets, clause_end)
    by_distance = sorted(
        (
            t
            for t in targets
            if doc.clause[t.start] != a_clause
            and abs(doc.sentence[t.start] - a_sentence) <= (2 if pronoun else 1)
            and (t.start < action.start if pronoun else t.start > action.start or _antecedent_ok(doc, action, t))
        ),
        key=lambda t: (doc.sentence[t.start] != a_sentence, abs(t.start - action.start)),
    )
    return by_distance[:1]


def _bare(doc: Doc, cues: Cues, action: Span) -> bool:
    """The action stands alone in its clause: 'Defender real-time protection: off, for the install'."""
    for i in range(doc.clause_start(action.start), action.start):
        word = doc.tokens[i].word
        if word in _PREPOSITIONS:
            return True  # 'for the install, off'
        if not (doc.tokens[i].is_mark or word in cues.filler or word in _TIME_WORDS or word in _COORDINATION):
            return False
    return True


def _antecedent_ok(doc: Doc, action: Span, target: Span) -> bool:
    """An elided object may come from the sentence before, or from a main clause just before ('select it and
    choose Format'), never from an 'if …' clause ('if it says the antivirus must go, stop and escalate')."""
    if doc.sentence[target.start] != doc.sentence[action.start]:
        return True
    start = doc.clause_start(action.start)
    if start == 0 or doc.clause_lead.get(doc.clause[action.start], "") not in (*_COORDINATION, ""):
        return False
    lead = doc.clause_lead.get(doc.clause[start - 1], "")
    return (
        doc.clause[target.start] == doc.clause[start - 1]
        and lead not in _CONDITIONAL
        and lead not in ("when", "once", "because", "since", "while", "until", "after", "before")
    )


def _coordinated_object(doc: Doc, cues: Cues, action: Span, targets: list[Span], clause_end: int) -> list[Span]:
    """'Ask for their login and password': a short 'and …' clause after the action is still its object."""
    if clause_end >= len(doc.tokens) or doc.clause_lead.get(doc.clause[clause_end], "") not in _COORDINATION:
        return []
    nxt = doc.clause[clause_end]
    end = clause_end
    while end < len(doc.tokens) and doc.clause[end] == nxt:
        end += 1
    content = doc.content_words(clause_end + 1, end, cues.filler)
    if len(content) > 3 or (content and doc.tokens[content[0]].stem in _COMMON_VERBS):
        return []  # 'run it and attach the log': a new step, not more of the object
    return [t for t in targets if doc.clause[t.start] == nxt][:1]


def _blocked(frame: Frame, doc: Doc, action: Span, target: Span) -> bool:
    """'Tell the user THAT IT will never ask for the code': the target sits in another clause's grip."""
    return action.end <= target.start and any(
        doc.tokens[i].word in frame.blockers for i in range(action.end, target.start)
    )


def _target_allowed(frame: Frame, doc: Doc, span: Span) -> bool:
    before = doc.tokens[span.start - 1] if span.start > 0 else None
    after = doc.tokens[span.end] if span.end < len(doc.tokens) else None
    if before is not None and before.stem in frame.not_after:
        return False
    return not (after is not None and after.stem in frame.not_before)


def _scan_prose(text: str, cat: Catalogue) -> set[str]:
    cues = cat.cues
    doc = Doc(words(text, cat.joinable), cues.splitter)
    mood: Mood | None = None
    hits: set[str] = set()
    for rule in cat.rules:
        for frame in rule.frames:
            actions = frame.actions.find(doc)
            if not actions:
                continue
            targets = [t for t in frame.targets.find(doc) if _target_allowed(frame, doc, t)]
            if not targets:
                continue
            mood = mood or Mood(doc, cues)
            if _frame_fires(frame, doc, cues, mood, actions, targets):
                hits.add(rule.info.id)
                break
    return hits


def _frame_fires(frame: Frame, doc: Doc, cues: Cues, mood: Mood, actions: list[Span], targets: list[Span]) -> bool:
    context = frame.context.find(doc) if frame.context else None
    veto = frame.veto.find(doc) if frame.veto else []
    for action in actions:
        if frame.bare and not _bare(doc, cues, action):
            continue
        word = doc.tokens[action.head].word
        if word.endswith("s") and not word.endswith("ss") and any(t.end == action.start for t in targets):
            continue  # 'BIOS updates', 'Defender exclusions': a noun, not an order
        s = doc.sentence[action.start]
        if context is not None and not any(doc.sentence[c.start] in (s - 1, s, s + 1) for c in context):
            continue
        if any(doc.sentence[v.start] == s for v in veto):
            continue
        paired = _targets_for(frame, doc, cues, mood, action, targets)
        if paired and mood.is_instruction(action, paired):
            return True
    return False


_LEAD_IN_MARKS = ":.\u2026 "
_SENTENCE_BREAK = re.compile(r"[.!?;](?=\s|$)|\n")


def _scan_commands(text: str, cat: Catalogue) -> set[str]:
    view = command_view(text)
    hits: set[str] = set()
    for rule in cat.rules:
        for pattern in rule.commands:
            for match in pattern.finditer(view):
                starts = [m.end() for m in _SENTENCE_BREAK.finditer(view, 0, match.start())]
                prefix = view[starts[-1] if starts else 0 : match.start()]
                doc = Doc(words(prefix + " cmdx"), cat.cues.splitter)
                action = Span(len(doc.tokens) - 1, len(doc.tokens), len(doc.tokens) - 1)
                mood = Mood(doc, cat.cues)
                if not (mood.negated(action) or (mood.past_question(action) and not mood.nudged(action))):
                    hits.add(rule.info.id)
                    break
            if rule.info.id in hits:
                break
    return hits


ENGLISH_BY_SENTENCE_RULES = True
PROSE_LANGUAGES = frozenset({"en", "es", "de", "fr", "pt"})  # the languages safety_rules.json has words in


def scan_node(text: str, labels: Sequence[str] = ()) -> list[Finding]:
    """Every rule the step breaks: text and labels alone and together. Empty when safe."""
    cat = catalogue()
    labels = [label for label in labels if label and label.strip()]
    lead_in = (text or "").rstrip()
    if (
        labels
        and lead_in
        and not lead_in.endswith(("?", "!"))
        and (lead_in.endswith((":", "\u2026", "...")) or lead_in[-1] != ".")
    ):
        # 'Set it to:' + 'Off', 'Ask the user for their' + 'Password': the label finishes the sentence
        stem_text = lead_in.rstrip(_LEAD_IN_MARKS)
        groups = [f"{stem_text} {label}" for label in labels]
    else:
        groups = [f"{text}\n{label}" for label in labels] or [text or ""]
    hits: set[str] = set()
    for part in [text or "", *labels]:
        hits |= _scan_commands(part, cat)
    details: dict[str, str] = {}
    for group in dict.fromkeys([text or "", *groups]):
        found, excused, languages = concepts.analyse(group)
        if ENGLISH_BY_SENTENCE_RULES and concepts.mainly_english(group) and found:
            # English: the sentence rules judge the mood; a hazard the concepts found stands when the sentence
            # rules agree on the step said in plain words ('put GravityZone into passive mode': disable it)
            agreed = _scan_prose(concepts.canonical_view(group), cat)
            found = [m for m in found if m.rule in agreed or not m.agree]
        for match in found:
            hits.add(match.rule)
            details.setdefault(match.rule, concepts.describe(match))
        if group in groups:
            prose = _scan_prose(group, cat)
            # The English sentence model does not know another language's mood; there the concepts decide: once
            # they read the step as forbidden, checked or handed off, an English-only reading of it does not stand;
            # in a language the sentence lexicons do not speak, it stands only for a hazard whose words the step
            # names in its own language ('installer den nye' is no English 'installer')
            if "en" not in languages:
                prose = set() if excused else prose
                if languages and not languages & PROSE_LANGUAGES:
                    prose &= concepts.possible(group)
            hits |= prose
            english = concepts.english_view(group)
            if english is not None:  # typos and product names, said so the English sentence model knows them
                hits |= _scan_prose(english, cat)
    return [
        Finding(rule.info.id, rule.info.description, details.get(rule.info.id, ""))
        for rule in cat.rules
        if rule.info.id in hits
    ]


def explain(text: str, labels: Sequence[str] = ()) -> dict[str, Any]:
    """For tuning only: the tokens the rules saw, split into sentences and clauses."""
    cat = catalogue()
    doc = Doc(words("\n".join([text, *labels]), cat.joinable), cat.cues.splitter)
    return {
        "tokens": [(t.word, doc.sentence[i], doc.clause[i]) for i, t in enumerate(doc.tokens)],
        "findings": [f.rule_id for f in scan_node(text, labels)],
    }
