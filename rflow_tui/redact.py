"""Secrets and personal data found in ticket and note text, withheld behind placeholders.

Users paste passwords, one-time codes, API keys, e-mail addresses and phone numbers into
tickets; none of that may reach a model or a PSA note unasked. ``Redactor`` replaces each
value with a stable placeholder (the same value gives the same ``[email-1]`` everywhere
one redactor is used, e.g. across one walk's prompt) and counts what it withheld by kind.
Only kinds and counts ever leave this module: never the values, so nothing here can log them.

Pure standard library (``detect-secrets`` was measured against these patterns on the
test corpus and lost: see BENCHMARKS.md, "Redaction").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

# Kinds, in the order a summary names them, with their placeholder stem and words (one, many).
KINDS: dict[str, tuple[str, str, str]] = {
    "password": ("password", "password", "passwords"),
    "code": ("code", "one-time code", "one-time codes"),
    "private-key": ("private-key", "private key", "private keys"),
    "key": ("key", "API key", "API keys"),
    "token": ("token", "access token", "access tokens"),
    "email": ("email", "e-mail address", "e-mail addresses"),
    "phone": ("phone", "phone number", "phone numbers"),
    "custom": ("withheld", "item matching the desk's privacy patterns", "items matching the desk's privacy patterns"),
}


class PatternError(ValueError):
    """An extra pattern from the config that cannot be used, said in words."""


@dataclass(frozen=True)
class Privacy:
    """What to withhold: nothing when not ``enabled``, else the built-in detectors and the desk's own regexes."""

    enabled: bool = True
    extra_patterns: tuple[str, ...] = field(default_factory=tuple)


DEFAULT_PRIVACY = Privacy()


@dataclass(frozen=True)
class Finding:
    """One value to withhold: where it is and what kind. ``value`` is the secret itself: never log it."""

    kind: str
    start: int
    end: int
    value: str


# --- the detectors -------------------------------------------------------------------------------

_I = re.IGNORECASE
# Specific formats first: a later, vaguer detector never wins a span a specific one found.
_FORMATS: list[tuple[str, re.Pattern[str]]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
    ),
    ("private-key", re.compile(r"PuTTY-User-Key-File-\d:[\s\S]*?(?:Private-MAC: *[0-9a-f]+|\Z)")),
    ("token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")),
    ("key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")),
    ("key", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})\b")),
    ("key", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}")),
    ("key", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+")),
    ("key", re.compile(r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}")),  # Entra ID (Azure AD) client secret
    ("key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("key", re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}")),
    ("key", re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}")),
    ("key", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),
]

# Formats whose secret is one group of a longer match.
_FIELDS: list[tuple[str, re.Pattern[str]]] = [
    ("key", re.compile(r"\b(?:AccountKey|SharedAccessKey|AccessKey)\s*=\s*([A-Za-z0-9+/=]{20,})", _I)),
    ("token", re.compile(r"[?&]sig=([A-Za-z0-9%+/=]{16,})", _I)),
    ("token", re.compile(r"\bbearer\s+([A-Za-z0-9._~+/=-]{16,})", _I)),
    ("password", re.compile(r"\b[a-z][a-z0-9+.-]{0,15}://[^\s:/@]{1,64}:([^\s@/]{1,128})@", _I)),
]

# key = value with a key name that says secret; the value must look random (see _random).
_KEY_VALUE = re.compile(
    r"(?<![a-z0-9])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?key(?:[_-]?id)?"
    r"|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|private[_-]?key|license[_-]?key|sas)"
    r"\b[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"']?([A-Za-z0-9+/_.~=-]{12,})",
    _I,
)

# "password is X", "pw: X", in the desk languages.
_PASSWORD_WORDS = (
    r"(?:pass(?:word|wd|code|phrase|wort)?|pwd?|pword|kennwort|contrase(?:ñ|n)a|clave|mot\s+de\s+passe|mdp"
    r"|parola\s+d'ordine|senha|palavra-passe|wachtwoord|has(?:ł|l)o|l(?:ö|o)senord(?:et)?|passwor(?:d|t)s?)"
)
_CONNECTOR = (
    r"(?:\s+(?:(?:for|f(?:ö|o)r|de|del|de\s+la|du|des|von|vom|für|van|voor|dla|per|para|do|da|della|of|on|till)"
    r"\s+(?:\S+\s+){1,5}?)?"
    r"(?:(?:is|was|has\s+been|will\s+be)(?:\s+(?:now|changed|set|reset|updated))?(?:\s+to)?|(?:set|changed|reset)\s+to"
    r"|es|era|est|était|ist|war"
    r"|lautet|è|era|é|är|var|jest|to|wynosi|is\s+nu|nu)\b\s*[:=]?|\s*(?:[:=]|->|=>)|\s+-"
    r"|(?:\s+[\w'()-]+){1,3}?\s*[:=](?=\s))"  # a few words, then a colon: "password again: X", "password for VPN: X"
)
_PASSWORD = re.compile(
    rf"(?<![\w-]){_PASSWORD_WORDS}(?:\s+(?:(?:is|was)\s+)?(?:now|new|temp(?:orary)?|nuevo|nouveau|neu(?:es)?|nuova|nova|nieuw|nytt))?"
    rf"(?:(?P<connector>{_CONNECTOR})\s*|\s+)(?:\"(?P<dq>[^\"\n]{{3,64}})\"|'(?P<sq>[^'\n]{{3,64}})'|(?P<bare>[^\s;]{{3,64}}))",
    _I,
)
# Words that follow "password:" or "password is" and are not one.
_NOT_A_PASSWORD_WORDS = """
    expired expires expiring reset resets wrong incorrect invalid required needed missing locked blocked
    changed change correct right ok okay fine same old new not no none empty blank unknown forgotten forgot
    set policy prompt prompts field box dialog manager managers complexity history length rules
    working works work accepted rejected denied failed failing saved stored cached synced sync the a an
    his her their my your our its it this that which and or but to for of on in at is was be
    abgelaufen falsch gesperrt geändert ungültig caducada incorrecta bloqueada expiré incorrect bloqué
    scaduta errata bloccata expirada errada bloqueada verlopen onjuist geblokkeerd wygasło błędne
    zablokowane utgånget fel låst
"""
_NOT_A_PASSWORD = frozenset(_NOT_A_PASSWORD_WORDS.split())

_CODE_WORDS = (
    r"(?:(?:one[- ]time|verification|security|confirmation|sms|text|mfa|2fa|two[- ]factor|login|sign[- ]?in|auth"
    r"|authentication|authenticator|access|otp|backup|recovery|reset|pairing|approval)\s+(?:code|pin|number)"
    r"|otp|pin(?:\s+code)?|passcode|tan|code|c(?:ó|o)digo|codice|kod|engångskod|verifieringskod|bestätigungscode"
    r"|sicherheitscode|einmalcode|verificatiecode|code\s+de\s+v(?:é|e)rification|kod\s+weryfikacyjny"
    r"|[^\W\d_]{2,}-?(?:code|kod))"  # compounds: inlogcode, sms-code, sicherheitskod
)
# Compounds that name a program's or a product's code, not a person's.
_NOT_A_CODE_WORD = re.compile(
    r"^(?:error|fehler|fout|fel|b(?:ł|l)(?:ę|e)d|exit|status|stop|return|event|zip|post|area|bar|qr|source|promo"
    r"|discount|product|country|region|unicode|opcode|shell|pseudo|byte|machine|key|farb|kurz|dienst|artikel)-?",
    _I,
)
_CODE = re.compile(rf"(?<![\w-])(?P<word>{_CODE_WORDS})\b", _I)
_CODE_VALUE = re.compile(r"(?<![\w.:/,-])(?:\d{3}[ -]\d{3}|\d{2}[ -]\d{2}[ -]\d{2}|\d{4,8})(?![\w.:/-]|,\d)")
_CODE_REACH = 40  # characters after the word where its code may stand ("the code sent to ... was 902117")
# A code after these words is a program's, not a person's: "error code 1603", "exit code 2".
_NOT_A_CODE_BEFORE = re.compile(
    r"(?:error|exit|return|status|stop|event|zip|postal|post|area|product|country|bug|fault|reason|result|http"
    r"|fehler|c(?:ó|o)digo\s+de\s+error|d'erreur|errore|błędu|fel|fout|sql|hresult|kb|ticket)\W*$",
    _I,
)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,}\b")

_PHONE_WORDS = (
    r"(?:phone|t(?:é|e)l(?:ephone)?|mobile|cell(?:phone)?|call(?:\s+(?:me|him|her|them|back))?(?:\s+(?:at|on))?|ring|whatsapp"
    r"|sms|text\s+(?:me|him|her)(?:\s+at)?|ext(?:ension)?|tel(?:é|e)fono|m(?:ó|o)vil|celular|t(?:é|e)l(?:é|e)phone"
    r"|portable|telefon|handy|mobil|rufnummer|cellulare|telefone|telemóvel|telefoon|mobiel|komórka|komorka"
    r"|fax|telefonnummer|handynummer|mobilnummer|telefonnummern)"
)
_PHONE_SHAPES = re.compile(
    r"(?<![\w.+/-])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(0?\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"  # +49 30 1234567, +1 (555) 123-4567
    r"|\(\d{2,5}\)\s?\d{3,4}[\s.-]?\d{3,4}"  # (555) 123-4567, (030) 123 4567
    r"|\d{3}[-.]\d{3}[-.]\d{4}"  # 555-123-4567
    r"|0\d{1,4}[\s/-]\d{2,4}(?:[\s-]?\d{2,4}){1,3}"  # 030 1234567, 06-12345678, 070-123 45 67
    r"|0\d(?:\.\d{2}){4}"  # 06.12.34.56.78
    r")(?![\w.-]*\d)(?![\w/-])"
)
_PHONE_AFTER_WORD = re.compile(
    rf"(?<![\w-]){_PHONE_WORDS}\b\.?:?\s*(?:(?:no|nr|number|#)\.?:?\s*)?(?:[^\W\d]+\s+){{0,2}}?:?\s*"
    r"(?P<value>\+?\d[\d\s().-]{5,18}\d)(?![\w:/-]|\.\d)",
    _I,
)
_DATE_OR_TIME = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$|^\d{1,2}:\d{2}")


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _random(value: str) -> bool:
    """Looks generated: mixes letters and digits (or is long) and is varied enough."""
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[+/_=.~-]"))
    return len(value) >= 12 and classes >= 2 and _entropy(value) >= 3.0 and not value.isalpha()


# Shown masked already ("********", "<redacted>"): nothing to withhold, nothing to count.
_MASKED = re.compile(r"[*•●xX#.]+|<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\(?redacted\)?|\(?hidden\)?", _I)
_PATH = re.compile(r"[A-Za-z]:\\|[/\\~]|\w+://")
_PLAIN_CODE_WORD = re.compile(r"(?:code|kod|codice|c(?:ó|o)digo)$", _I)
_CODE_CONNECTOR = re.compile(r"\s*(?:(?:is|was|es|era|est|ist|war|è|é|är|var|jest|to|wynosi)\b|[:=#])", _I)


def _password_like(value: str) -> bool:
    """A token a person would choose as a password, not an ordinary word."""
    core = value.strip(".,;:!?)(\"'")
    if len(core) < 4 or core.casefold() in _NOT_A_PASSWORD or "[" in core:
        return False
    has_digit = any(c.isdigit() for c in core)
    has_symbol = any(not c.isalnum() for c in core)
    inner_upper = any(c.isupper() for c in core[1:]) and any(c.islower() for c in core)
    return has_digit or has_symbol or inner_upper


def _trim(value: str, start: int) -> tuple[int, int]:
    """A bare value's span without the sentence's closing punctuation (a password's own "!" stays)."""
    end = start + len(value)
    while end > start and value[end - start - 1] in ".,;:)]}\"'":
        end -= 1
    return start, end


def _passwords(text: str) -> Iterable[Finding]:
    for m in _PASSWORD.finditer(text):
        group = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
        value = m.group(group)
        start, end = m.start(group), m.end(group)
        if group == "bare":
            start, end = _trim(value, start)
            value = text[start:end]
            if value.casefold() in _NOT_A_PASSWORD or len(value) < 3:
                continue
            explicit = m.group("connector") and re.search(r"[:=]|->", m.group("connector"))
            if not m.group("connector") and (
                not (_password_like(value) and any(c.isalpha() for c in value)) or _PATH.match(value)
            ):
                continue  # "pass 100%", "boarding pass 4711", "pwd C:\\Users": with no "is" or ":", it has letters
            if not explicit and not _password_like(value):
                continue
            if explicit and not _password_like(value) and (len(value) < 6 or (value.isalpha() and value.islower())):
                continue
        if value and not _MASKED.fullmatch(value):
            yield Finding("password", start, end, value)


def _codes(text: str) -> Iterable[Finding]:
    phones = [(p.start, p.end) for p in _phones(text)]
    for m in _CODE.finditer(text):
        if _NOT_A_CODE_BEFORE.search(text[max(0, m.start() - 30) : m.start()]):
            continue
        if _NOT_A_CODE_WORD.match(m.group("word")) and not re.match(r"(?:code|kod)$", m.group("word"), _I):
            continue
        reach = re.split(r"[.;!?\n](?:\s|$)", text[m.end() : m.end() + _CODE_REACH], maxsplit=1)[0]
        for value in _CODE_VALUE.finditer(reach):
            start, end = m.end() + value.start(), m.end() + value.end()
            if any(a < end and start < b for a, b in phones):
                continue
            between = text[m.end() : start]
            plain = _PLAIN_CODE_WORD.match(m.group("word")) and _digits(value.group()) < 6
            if plain and not _CODE_CONNECTOR.match(between):
                break  # "code 52", "the code 1234 in line 5": a short number after a bare "code" is not a secret
            if not re.search(r"\b(?:error|exit|ticket|kb|build|version|room|ext|line|step|port|id)\b", between, _I):
                yield Finding("code", start, end, value.group())
            break


def _digits(value: str) -> int:
    return sum(c.isdigit() for c in value)


def _phones(text: str) -> Iterable[Finding]:
    for m in _PHONE_SHAPES.finditer(text):
        value = m.group()
        if 7 <= _digits(value) <= 15 and not _DATE_OR_TIME.match(value):
            yield Finding("phone", m.start(), m.end(), value)
    for m in _PHONE_AFTER_WORD.finditer(text):
        value = m.group("value").strip()
        start = m.start("value")
        one_run = re.fullmatch(r"[\d.]+", value) and not re.fullmatch(r"0\d{9,12}", value)  # 07700900123 is one
        if 6 <= _digits(value) <= 15 and not _DATE_OR_TIME.match(value) and not one_run:
            yield Finding("phone", start, start + len(value), value)


def _key_values(text: str) -> Iterable[Finding]:
    for m in _KEY_VALUE.finditer(text):
        start, end = _trim(m.group(1), m.start(1))
        value = text[start:end]
        if _random(value):
            yield Finding("key", start, end, value)


@lru_cache(maxsize=32)
def compile_extra(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The desk's own patterns compiled; PatternError names the one that cannot be used and why."""
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise PatternError(f"pattern {index + 1} ({pattern!r}) is not a valid regular expression: {exc}") from exc
        if regex.fullmatch(""):
            raise PatternError(f"pattern {index + 1} ({pattern!r}) matches empty text, so it would withhold nothing")
        compiled.append(regex)
    return tuple(compiled)


def find(text: str, privacy: Privacy = DEFAULT_PRIVACY) -> list[Finding]:
    """Every value to withhold in ``text``, in order, no two overlapping (the first, longest wins)."""
    if not text or not privacy.enabled:
        return []
    return list(_find(text, privacy))


@lru_cache(maxsize=4096)
def _find(text: str, privacy: Privacy) -> tuple[Finding, ...]:
    """Cached: every prompt of a walk carries the same ticket and notes again (~0.3 ms a text to scan)."""
    candidates: list[tuple[int, Finding]] = []
    for rank, regex in enumerate(compile_extra(privacy.extra_patterns)):
        for m in regex.finditer(text):
            group = 1 if regex.groups else 0
            if m.group(group):
                candidates.append((rank, Finding("custom", m.start(group), m.end(group), m.group(group))))
    rank = 100
    for kind, regex in _FORMATS:
        candidates += [(rank, Finding(kind, m.start(), m.end(), m.group())) for m in regex.finditer(text)]
    for kind, regex in _FIELDS:
        candidates += [(rank + 1, Finding(kind, m.start(1), m.end(1), m.group(1))) for m in regex.finditer(text)]
    detectors = (_key_values, _passwords, _emails, _phones, _codes)
    for offset, detector in enumerate(detectors, start=2):
        candidates += [(rank + offset, found) for found in detector(text)]
    candidates.sort(key=lambda c: (c[0], c[1].start, -(c[1].end - c[1].start)))
    taken: list[Finding] = []
    for _, found in candidates:
        if found.end > found.start and all(found.end <= t.start or found.start >= t.end for t in taken):
            taken.append(found)
    return tuple(sorted(taken, key=lambda f: f.start))


def _emails(text: str) -> Iterable[Finding]:
    return (Finding("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text))


class Redactor:
    """Withholds values behind placeholders that stay the same for the redactor's life (one walk, one note)."""

    def __init__(self, privacy: Privacy = DEFAULT_PRIVACY) -> None:
        self.privacy = privacy
        self._placeholders: dict[str, str] = {}
        self._kinds: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        """``text`` with every finding replaced by its placeholder."""
        findings = find(text, self.privacy) if text else []
        if not findings:
            return text
        out, last = [], 0
        for found in findings:
            out += [text[last : found.start], self._placeholder(found)]
            last = found.end
        out.append(text[last:])
        return "".join(out)

    def _placeholder(self, found: Finding) -> str:
        key = found.value.strip().casefold() if found.kind == "email" else found.value.strip()
        if key not in self._placeholders:
            self._kinds[found.kind] += 1
            self._placeholders[key] = f"[{KINDS[found.kind][0]}-{self._kinds[found.kind]}]"
        return self._placeholders[key]

    @property
    def withheld(self) -> dict[str, int]:
        """How many different values of each kind were withheld so far (kinds and counts only)."""
        return {kind: self._kinds[kind] for kind in KINDS if self._kinds[kind]}


def summary(withheld: dict[str, int], where: str = "the AI") -> list[str]:
    """One line a tech reads, e.g. "2 e-mail addresses and 1 password were withheld from the AI"."""
    parts = [f"{n} {KINDS[kind][1] if n == 1 else KINDS[kind][2]}" for kind, n in withheld.items() if n]
    if not parts:
        return []
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    verb = "was" if len(parts) == 1 and next(iter(n for n in withheld.values() if n)) == 1 else "were"
    return [f"{listed} {verb} withheld from {where}"]


def redact_for_psa(text: str, privacy: Privacy = DEFAULT_PRIVACY) -> str:
    """A note or transcript for a PSA, with its secrets and personal data behind placeholders."""
    return Redactor(privacy).redact(text)
