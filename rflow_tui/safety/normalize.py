# ruff: noqa: RUF001, RUF002  (look-alike letters are this file's subject)
"""Text folding for the safety rules: one spelling for many disguises.

Two views of a step come out of here. ``command_view`` keeps punctuation (paths,
switches, pipes) so command detectors can read it; ``words`` turns prose into
tokens with sentence and clause marks, so the rules can reason about meaning.
Both fold case, accents, Unicode look-alikes, zero-width characters, full-width
forms, leetspeak and spacing tricks first, so "Ｄ1s4bl3 the f i r e w a l l"
reads as "disable the firewall".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Letters that look like ASCII ones (Cyrillic, Greek, small capitals) folded to ASCII.
_LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "х": "x",
        "у": "y",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ӏ": "l",
        "ո": "n",
        "ս": "u",
        "ᴠ": "v",
        "ѡ": "w",
        "к": "k",
        "м": "m",
        "т": "t",
        "в": "b",
        "н": "h",
        "ь": "b",
        "ї": "i",
        "ё": "e",
        "ԛ": "q",
        "ʋ": "v",
        "г": "r",
        "п": "n",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ϲ": "c",
        "ʏ": "y",
        "ɪ": "i",
        "ʟ": "l",
        "ɴ": "n",
        "ʀ": "r",
        "ꜱ": "s",
        "ᴀ": "a",
        "ᴇ": "e",
        "ᴏ": "o",
        "ᴜ": "u",
        "ᴅ": "d",
        "ᴍ": "m",
        "ᴛ": "t",
        "ᴋ": "k",
        "ᴘ": "p",
        "ᴄ": "c",
        "ʙ": "b",
        "ꜰ": "f",
        "ᴡ": "w",
        "ʜ": "h",
        "ɢ": "g",
        "ᴊ": "j",
        "ᴢ": "z",
        "ǫ": "q",
        "ᴦ": "r",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": " - ",
        "―": " - ",
        "−": "-",
        "⁃": "-",
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "′": "'",
        "`": "'",
        "´": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "‹": '"',
        "›": '"',
        "¿": " ",
        "¡": " ",
        "…": ". ",
    }
)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]"
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i", "|": "l"}
)
_LEET_CHARS = set("013457@$!|8")
_EMAIL = re.compile(r"[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}")
_FREE_MAIL = re.compile(
    r"@(gmail|googlemail|yahoo|ymail|hotmail|outlook|live|msn|icloud|me|mac|aol|gmx|web|proton|protonmail|pm|"
    r"mail|yandex|zoho|tutanota|fastmail|hey|qq|163|126|orange|free|laposte|libero|uol|bol|terra|t-online)\."
)
_CONTRACTIONS = (
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"(?<=[a-z]{3})-(lo|la|los|las|le|les|o|a|os|as|lui|leur|ihn|es)\b"), " it"),  # exécutez-le
    (re.compile(r"\b(ca|wo|sha)n'?t\b"), lambda m: {"ca": "can", "wo": "will", "sha": "shall"}[m.group(1)] + " not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\b(it|that|what|there|who|he|she|here|wat)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\b(\w+)'(ll)\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'(re)\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'(ve)\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'(d)\b"), r"\1 would"),
    (re.compile(r"\b(\w+)'s\b"), r"\1"),  # possessive: "Defender's" is Defender
    (re.compile(r"\bl'|\bd'|\bqu'|\bj'|\bn'|\bs'|\bc'"), lambda m: m.group(0)[:-1] + " "),  # French elision
)
_CHAT = {
    "ur": "your",
    "u": "you",
    "pls": "please",
    "plz": "please",
    "pw": "password",
    "pwd": "password",
    "passwd": "password",
    "wat": "what",
    "wats": "what is",
    "whats": "what is",
    "thx": "thanks",
    "r": "are",
    "dont": "do not",
    "cant": "can not",
    "wont": "will not",
    "didnt": "did not",
    "doesnt": "does not",
    "isnt": "is not",
    "shouldnt": "should not",
    "mustnt": "must not",
    "im": "i am",
    "av": "antivirus",
    "a/v": "antivirus",
    "2-fa": "2fa",
    "mdp": "mot de passe",
}


def fold(text: str) -> str:
    """NFKC, look-alikes to ASCII, invisible characters dropped, accents stripped, lower case, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _INVISIBLE.sub("", text).casefold().translate(_LOOKALIKES)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    lines = []
    for line in text.splitlines():
        line = re.sub(r"[^\S\n]{2,}", "  ", line)  # two spaces part spelled-out words: 'r e g  a d d'
        line = _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), line)
        lines.append(" ".join(line.split()))
    return "\n".join(line for line in lines if line)


# 'd i s a b l e' (one space between letters) is one word; two spaces separate spelled words.
_SPELLED = re.compile(r"(?<![a-z0-9])[a-z](?: [a-z]){2,}(?![a-z0-9])")


def command_view(text: str) -> str:
    """The folded text with shell disguises undone: carets and quotes inside words, ``.exe``, switch spellings."""
    view = fold(text)
    view = re.sub(r"(?<=[a-z0-9])[\^'\"]+(?=[a-z0-9])", "", view)  # p^ower"shell, i'e'x
    view = re.sub(r"(?<=\w)\.exe\b", "", view)
    view = re.sub(r"(?<=\s)[/\u2013](?=[a-z])", "-", view) if "powershell" in view or "pwsh" in view else view
    view = re.sub(r"\s+-{2}", " -", view)  # --force is -force for the detectors
    return view


@dataclass(frozen=True)
class Token:
    """One word of prose, or a boundary mark: ``.`` ends a sentence, ``?`` ends a question, ``,`` a clause."""

    word: str
    stem: str

    @property
    def is_mark(self) -> bool:
        return self.word in MARKS


MARKS = {".", "?", ","}
_SENTENCE_END = re.compile(r"[.!;](?=\s|$)|\n")
_TOKEN = re.compile(r"\?|[.!;](?=\s|$)|,|(?<!\b[a-z]):(?=\s|$)|[()\">]|\s-\s|[a-z0-9_@$!|]+(?:[-'][a-z0-9_@$!|]+)*|\n")
_SUFFIXES = (
    "ations",
    "ation",
    "ements",
    "ement",
    "ments",
    "ment",
    "ings",
    "ing",
    "ions",
    "ion",
    "ating",
    "ated",
    "ates",
    "ate",
    "ies",
    "ied",
    "ed",
    "es",
    "al",
    "s",
    "e",
    "y",
)


_IRREGULAR = {
    "made": "make",
    "given": "give",
    "gave": "give",
    "got": "get",
    "gotten": "get",
    "took": "take",
    "taken": "take",
    "sent": "send",
    "told": "tell",
    "said": "say",
    "shown": "show",
    "kept": "keep",
    "left": "leave",
    "ran": "run",
    "wrote": "write",
    "written": "write",
    "hid": "hide",
    "hidden": "hide",
    "shut": "shut",
    "put": "put",
    "set": "set",
    "tried": "try",
    "tries": "try",
    "trying": "try",
}


_FUNCTION_WORDS = {
    "they",
    "them",
    "this",
    "that",
    "these",
    "those",
    "their",
    "there",
    "then",
    "than",
    "what",
    "when",
    "with",
    "your",
    "have",
    "here",
    "were",
    "some",
    "only",
    "also",
    "into",
    "onto",
    "once",
    "does",
    "done",
    "being",
    "always",
    "anyway",
    "theirs",
    "yours",
    "every",
    "any",
    "many",
    "nobody",
    "none",
}


def stem(word: str) -> str:
    """A crude English stem: enough that disable, disabled, disabling and disablement meet."""
    word = _IRREGULAR.get(word, word)
    if len(word) <= 3 or not word.isalpha() or word in _FUNCTION_WORDS:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "sui":
                continue
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    return word


def _deleet(word: str) -> str:
    letters = sum(ch.isalpha() for ch in word)
    if letters >= 2 and any(ch in _LEET_CHARS for ch in word) and not word.isdigit():
        if (re.fullmatch(r"\d+[a-z]{1,3}", word) and word[0] not in "013") or re.fullmatch(r"[a-z]+\d{1,2}", word):
            return word  # 2fa, 6digit, win11, o365: real words, not leetspeak
        return word.translate(_LEET)
    return word


def _collapse_spelled(words: list[str]) -> list[str]:
    """'d i s a b l e' is 'disable': runs of three or more single letters are one word."""
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


def words(text: str, joinable: frozenset[str] = frozenset()) -> list[Token]:
    """Prose as tokens with boundary marks. ``joinable`` stems let 'fire wall' and 'dis able' join up."""
    folded = fold(text)
    folded = _EMAIL.sub(lambda m: " personaladdress " if _FREE_MAIL.search(m.group(0)) else " emailaddress ", folded)
    folded = re.sub(r"https?://\S+", " weblink ", folded)
    # A read-only cmdlet is one noun-like word, so 'Get-LocalGroupMember Administrators' asks nothing of anyone.
    folded = re.sub(
        r"\b(get|test|find|show|measure|select|format|confirm|compare|search|where|sort|out)-[a-z]\w*",
        " readonlycmd ",
        folded,
    )
    folded = re.sub(
        r"\b(wi-fi|e-mails?|log-ins?|sign-ins?|add-ons?|plug-ins?)\b", lambda m: m.group(0).replace("-", ""), folded
    )
    for pattern, repl in _CONTRACTIONS:
        folded = pattern.sub(repl, folded)
    raw: list[str] = []
    for match in _TOKEN.finditer(folded):
        piece = match.group(0)
        if piece in ("?",):
            raw.append("?")
        elif piece in (".", "!", ";", "\n"):
            if raw and raw[-1] in (".", "?"):
                continue  # '?' then a new line is one boundary
            raw.append(".")
        elif piece in (",", ":", "(", ")", '"', ">") or piece.strip() == "-":
            raw.append(",")
        else:
            piece = _deleet(piece.replace("'", "").replace("_", ""))
            piece = piece.replace("-", " ")  # parts rejoin below when the whole is a known word: real-time, dis-able
            raw.extend(piece.split())
    raw = [w for piece in _collapse_spelled(raw) for w in _CHAT.get(piece, piece).split()]
    if joinable:  # 'a r e d i r e c t' folded to 'aredirect': the article was spelled out too
        raw = [
            piece
            for w in raw
            for piece in (
                [w[0], w[1:]] if w[:1] in ("a", "i") and stem(w) not in joinable and stem(w[1:]) in joinable else [w]
            )
        ]
        joined: list[str] = []
        i = 0
        while i < len(raw):
            if i + 1 < len(raw) and raw[i] not in MARKS and raw[i + 1] not in MARKS:
                both = raw[i] + raw[i + 1]
                if stem(both) in joinable and stem(raw[i]) not in joinable and stem(raw[i + 1]) not in joinable:
                    joined.append(both)
                    i += 2
                    continue
            joined.append(raw[i])
            i += 1
        raw = joined
    return [Token(w, stem(w)) for w in raw]
