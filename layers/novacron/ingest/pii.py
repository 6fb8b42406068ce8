"""PII scrubbing of span attributes, span events and metric labels.

Detected values are replaced by a token ``<kind:hex12>``: the kind and the first 12 hex digits of
HMAC-SHA256(tenant key, kind + "\\0" + value). Equal values give equal tokens within a tenant (so a
user still correlates across spans and series), other tenants get other tokens, and nothing can be
reversed without the key. See docs/pii.md for the detectors and the choices behind them.

Pure logic: the deployment secret the tenant keys derive from is read at the handler's edge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

METRIC_NAME = "__name__"
MIN_KEY_BYTES = 32
# Attribute (and label) names whose value is a whole SQL statement: OTel semconv's old and new names,
# and their Prometheus-translated forms.
DB_STATEMENT_NAMES = frozenset({"db.statement", "db.query.text", "db_statement", "db_query_text"})
_KEY_CONTEXT = b"novacron-pii:"
_MAX_PASSES = 4
# A token this module wrote: never scrubbed again, so scrubbing is idempotent.
_SCRUBBED = r"<[a-z][a-z0-9_]*(?::[a-z0-9_]+)?:[0-9a-f]{12}>"
TOKEN_RE = re.compile(_SCRUBBED)
_TOKEN_SPLIT = re.compile(f"({_SCRUBBED})")


class CustomRule(BaseModel):
    """A tenant's own detector: every match of ``pattern`` becomes a ``<custom:name:…>`` token."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
        if compiled.fullmatch(""):
            # An empty match would put a token between every two characters.
            raise ValueError(f"pattern {pattern!r} matches the empty string")
        return pattern


class PiiRules(BaseModel):
    """Which detectors run for a tenant (all of them by default)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    email: bool = True
    card_numbers: bool = True
    ip_addresses: bool = True
    bearer_tokens: bool = True  # also JWTs and Authorization values
    db_statement_literals: bool = True
    custom: tuple[CustomRule, ...] = ()
    # Attribute/label names never scrubbed (e.g. "net.peer.ip" for a tenant that wants its IPs). Prometheus's
    # ``instance`` is a scrape target's address, infrastructure identity rather than personal data, and
    # the label an SRE reads first: it is exempt unless the tenant says otherwise.
    exempt_attributes: frozenset[str] = frozenset({"instance"})


# --- detectors ---------------------------------------------------------------------------------
# Every candidate pattern starts at a boundary (a lookbehind), so that a long run of ordinary
# characters is tried once, not at each of its positions: the scan stays linear.

_AUTHORIZATION = (
    r"(?P<authorization>\b(?i:authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?>(?P<auth_scheme>[A-Za-z][\w-]*\s+)?)(?P<auth_value>(?!<)[^\s\"',;]+))"
)
# At least 8 characters: "bearer bonds" in prose is not a credential.
_BEARER = r"(?P<bearer>\b(?i:bearer)\s+(?P<bearer_value>[A-Za-z0-9\-._~+/]{8,}=*))"
# Header and payload of a JWT are base64url JSON objects, so both start with "eyJ" ('{"').
_JWT = r"(?P<jwt>(?<![\w-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
_EMAIL = (
    r"(?P<email>(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}(?![\w-]))"
)
# Candidates only; ipaddress decides (valid octets, the rules of "::").
_IPV6 = (
    r"(?P<ipv6>(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z_.-]+)?(?![\w:]))"
)
# Not part of a longer dotted run: 1.2.3.4.5 is a version, not an address.
_IPV4 = r"(?P<ipv4>(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d))"
# A whole run of 13 to 80 digits with single spaces or dashes between some (possessive, and never
# started inside a run: each run is read once); _find_card picks the card in it. Longer runs are
# tables of numbers, not text a card number was pasted into, and are left alone.
_CARD = r"(?P<card>(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){12,79}+(?![ -]?\d))"
_DIGIT_GROUP = re.compile(r"\d+")
_GLUED_AFTER = re.compile(r"\w|[.,]\d")

# Detector name → (the rule that enables it, its pattern), in priority order: where two could match
# at one position, the first wins ("Authorization: Bearer eyJ…" is one bearer token, not a JWT).
_DETECTORS: dict[str, tuple[str, str]] = {
    "authorization": ("bearer_tokens", _AUTHORIZATION),
    "bearer": ("bearer_tokens", _BEARER),
    "jwt": ("bearer_tokens", _JWT),
    "email": ("email", _EMAIL),
    "ipv6": ("ip_addresses", _IPV6),
    "ipv4": ("ip_addresses", _IPV4),
    "card": ("card_numbers", _CARD),
}
# 13 or more digits with single spaces or dashes between some: what every card candidate contains.
_CARD_HINT = re.compile(r"\d[\d -]{11,}\d")


def _candidates(text: str) -> set[str]:
    """The detectors that could match ``text``, by substring checks that run at C speed.

    Most values hold no PII; this keeps the combined regex (dozens of steps per character) off them.
    """
    found = set()
    if "@" in text:
        found.add("email")
    if text.count(":") >= 2:
        found.add("ipv6")
    if text.count(".") >= 3:
        found.add("ipv4")
    if "eyJ" in text:
        found.add("jwt")
    if _CARD_HINT.search(text):
        found.add("card")
    lowered = text.lower()
    if "bearer" in lowered:
        found.add("bearer")
    if "authorization" in lowered:
        found.add("authorization")
    return found


@lru_cache(maxsize=256)
def _combined(names: frozenset[str]) -> re.Pattern[str]:
    """One regex for the named detectors (tokens first, so they are skipped whole)."""
    parts = [pattern for name, (_rule, pattern) in _DETECTORS.items() if name in names]
    return re.compile("|".join([f"(?P<token>{_SCRUBBED})", *parts]))


# SQL: comments, quoted identifiers and identifiers (kept), string literals (tokens), numbers ("?").
_SQL = re.compile(
    r"(?P<string>'(?:[^'\\]|\\.|'')*(?:'|\Z)"
    r"|\$\$.*?(?:\$\$|\Z)|\$(?P<tag>[A-Za-z_]\w*)\$.*?(?:\$(?P=tag)\$|\Z))"
    rf"|(?P<keep>{_SCRUBBED}|--[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:[^\"]|\"\")*\"?|`[^`]*`?"
    r"|[A-Za-z_:@#$][\w$#]*)"
    r"|(?P<number>(?<![\w.])(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.]))",
    re.DOTALL,
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check every payment card number passes."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_jwt(candidate: str) -> bool:
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def _is_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    # "::" alone (or "::" in prose) is not worth a token; every other valid address is.
    return not (address.version == 6 and not address.packed.strip(b"\0"))


def _find_card(run: str, glued_before: bool = False, glued_after: bool = False) -> tuple[int, int] | None:
    """Where a card number lies in a run of digit groups: the longest Luhn-valid span of whole groups.

    A card has 13-19 digits, the first 2-6 (the card networks' major industry identifiers), so epoch
    timestamps in milliseconds or nanoseconds (which start with 1) are not cards, and neither are
    order ids that fail the Luhn check. Spans of whole groups find "4111 1111 1111 1111" in
    "qty 2 4111 1111 1111 1111". A group glued to a word (``glued_before``/``glued_after``) only
    belongs to a span that leaves it out.
    """
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    spans = []  # (digits, first group, last group) of every span that could be a card
    last = len(groups) - 1 if glued_after else len(groups)
    for i, (first, _end) in enumerate(groups):
        if run[first] not in "23456" or (i == 0 and glued_before):
            continue
        digits = 0
        for j in range(i, last):
            digits += groups[j][1] - groups[j][0]
            if digits > 19:
                break
            if digits >= 13:
                spans.append((digits, i, j))
    for _digits, i, j in sorted(spans, key=lambda span: (-span[0], span[1])):
        start, end = groups[i][0], groups[j][1]
        if luhn_valid(re.sub(r"[ -]", "", run[start:end])):
            return start, end
    return None


def _until_stable(scrub: Callable[[str], str], value: str) -> str:
    """Apply ``scrub`` until the value stops changing (a few passes at most).

    A replacement can change what is next to it: an unsigned JWT's final '.' kept the "::1" after it
    from being an address, the token's '>' does not. Repeating makes scrubbing a scrubbed value a
    no-op. Values without PII take one pass, values with PII usually two.
    """
    for _ in range(_MAX_PASSES):
        scrubbed = scrub(value)
        if scrubbed == value:
            break
        value = scrubbed
    return value


class Scrubber:
    """Replaces PII in one tenant's values with keyed tokens, counting replacements by kind."""

    def __init__(self, rules: PiiRules, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the PII key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self.rules = rules
        # Keyed once; each token copies the keyed state instead of re-deriving it from the key.
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.counts: Counter[str] = Counter()
        self._enabled = {name for name, (rule, _p) in _DETECTORS.items() if rules.enabled and getattr(rules, rule)}
        self._custom = [(f"custom:{r.name}", re.compile(r.pattern)) for r in rules.custom] if rules.enabled else []
        self._handlers: dict[str, Callable[[re.Match[str]], str]] = {
            "token": lambda m: m.group(),
            "authorization": self._authorization,
            "bearer": lambda m: self._keep_prefix(m, "bearer_value", "bearer"),
            "jwt": lambda m: self._token("jwt", m.group()) if _is_jwt(m.group()) else m.group(),
            "email": lambda m: self._token("email", m.group()),
            "ipv6": self._ip,
            "ipv4": self._ip,
            "card": self._card,
        }

    @classmethod
    def for_tenant(cls, tenant: str, secret: bytes, rules: PiiRules | None = None) -> Scrubber:
        """A tenant's scrubber, its key derived from the deployment secret (see docs/pii.md)."""
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"the PII secret must be at least {MIN_KEY_BYTES} bytes, got {len(secret)}")
        key = hmac.new(secret, _KEY_CONTEXT + tenant.encode(), hashlib.sha256).digest()
        return cls(rules or PiiRules(), key)

    def scrub_text(self, value: str) -> str:
        """``value`` with every detected PII occurrence replaced by its token."""
        if not self.rules.enabled:
            return value
        return _until_stable(self._scrub_once, value)

    def _scrub_once(self, value: str) -> str:
        candidates = self._enabled.intersection(_candidates(value))
        if candidates:
            value = _combined(frozenset(candidates)).sub(self._replace, value)
        for kind, regex in self._custom:
            # Tokens already written are kept out of reach of the tenant's own patterns.
            parts = _TOKEN_SPLIT.split(value)
            replace = self._replacer(kind)
            parts[::2] = [regex.sub(replace, part) for part in parts[::2]]
            value = "".join(parts)
        return value

    def scrub_attribute(self, name: str, value: str) -> str:
        """A span attribute's (or event attribute's) value, scrubbed according to its name."""
        if not self.rules.enabled or name in self.rules.exempt_attributes:
            return value
        if name in DB_STATEMENT_NAMES and self.rules.db_statement_literals:
            return _until_stable(lambda v: self._scrub_once(_SQL.sub(self._sql_literal, v)), value)
        if self.rules.bearer_tokens and name.lower().endswith("authorization"):
            return self._authorization_value(value)
        return self.scrub_text(value)

    def scrub_labels(self, pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """A metric's labels with their values scrubbed; the metric name is never touched."""
        return tuple(
            (name, value if name == METRIC_NAME else self.scrub_attribute(name, value)) for name, value in pairs
        )

    # --- replacements ----------------------------------------------------------------------

    def _token(self, kind: str, value: str) -> str:
        self.counts[kind] += 1
        mac = self._mac.copy()
        mac.update(kind.encode() + b"\0" + value.encode("utf-8", "surrogatepass"))
        return f"<{kind}:{mac.hexdigest()[:12]}>"

    def _replace(self, match: re.Match[str]) -> str:
        return self._handlers[match.lastgroup or "token"](match)

    def _replacer(self, kind: str) -> Callable[[re.Match[str]], str]:
        return lambda match: self._token(kind, match.group())

    def _keep_prefix(self, match: re.Match[str], group: str, kind: str) -> str:
        """The match with its ``group`` part (the secret, not the words before it) tokenised."""
        return match.group()[: match.start(group) - match.start()] + self._token(kind, match[group])

    def _authorization(self, match: re.Match[str]) -> str:
        scheme = (match["auth_scheme"] or "").strip().lower()
        return self._keep_prefix(match, "auth_value", "bearer" if scheme == "bearer" else "authorization")

    def _authorization_value(self, value: str) -> str:
        """An Authorization header's value: the scheme is kept, the credentials become a token."""
        parts = value.split(None, 1)
        scheme, credentials = (parts[0], parts[1].strip()) if len(parts) == 2 else ("", value.strip())
        if not credentials or TOKEN_RE.fullmatch(credentials):
            return value
        token = self._token("bearer" if scheme.lower() == "bearer" else "authorization", credentials)
        return f"{scheme} {token}" if scheme else token

    def _ip(self, match: re.Match[str]) -> str:
        text = match.group()
        return self._token("ip", text) if _is_ip(text) else text

    def _card(self, match: re.Match[str]) -> str:
        text = match.group()
        whole = match.string
        # Digits glued to a word or a decimal point before or after belong to something else.
        glued_before = match.start() > 0 and (whole[match.start() - 1].isalnum() or whole[match.start() - 1] in "._")
        glued_after = _GLUED_AFTER.match(whole, match.end()) is not None
        found = _find_card(text, glued_before, glued_after)
        if found is None:
            return text
        start, end = found
        # The token hashes the digits alone: the same card, however it is spaced, is one token.
        return text[:start] + self._token("card", re.sub(r"[ -]", "", text[start:end])) + text[end:]

    def _sql_literal(self, match: re.Match[str]) -> str:
        if match.lastgroup == "number":
            self.counts["db_literal"] += 1
            return "?"
        if match.lastgroup == "string":
            return self._token("db_literal", match.group())
        return match.group()
