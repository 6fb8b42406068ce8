"""PII scrubbing: every detector's positives and negatives, tokens, rules, and properties."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from novacron.ingest.pii import TOKEN_RE, CustomRule, PiiRules, Scrubber, luhn_valid

SECRET = b"s" * 32


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber.for_tenant("acme", SECRET)


def scrubber_with(**rules: object) -> Scrubber:
    return Scrubber.for_tenant("acme", SECRET, PiiRules.model_validate(rules))


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': 'alice'})}.c2lnbmF0dXJl_-x"


def kinds(text: str) -> list[str]:
    """The kinds of the tokens in a scrubbed text, in order."""
    return [token[1:].rsplit(":", 1)[0] for token in TOKEN_RE.findall(text)]


# --- detectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "alice@example.com",
        "mail Alice.Smith+tag@mail.example.co.uk, please",
        "<bob_99@sub-domain.example.org>",
        "sent to x%y@example.io.",
    ],
)
def test_emails_become_tokens(scrubber: Scrubber, text: str) -> None:
    # Given a text holding one e-mail address
    # When it is scrubbed
    out = scrubber.scrub_text(text)
    # Then the address is one email token and no '@' is left
    assert kinds(out) == ["email"]
    assert "@" not in out


@pytest.mark.parametrize("text", ["@handle", "user@localhost", "a@b", "see docs @ example.com", "x@.com"])
def test_things_that_are_not_emails_stay(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "card 4111 1111 1111 1111 exp 12/29",
        "card 4111-1111-1111-1111.",
        "amex 378282246310005",
        "mc 5555555555554444",
        "qty 2 4111111111111111",
    ],
)
def test_luhn_valid_card_numbers_become_tokens(scrubber: Scrubber, text: str) -> None:
    # Given a text holding a Luhn-valid card number
    out = scrubber.scrub_text(text)
    # Then the number is one card token
    assert kinds(out) == ["card"]
    assert not re.search(r"\d{4}[ -]?\d{4}", out)


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112",  # Luhn-invalid
        "ts 1700000000000",  # epoch milliseconds
        "ts 1700000000000000000",  # epoch nanoseconds
        "id 41111111111111111111",  # 20 digits: no card is that long
        "ORD4111111111111111",  # glued to a word
        "v4111111111111111.2",
        "pi 3.4111111111111111",  # digits of a decimal
        "4111 1111 1111 1112 2025",  # no Luhn-valid span of whole groups
    ],
)
def test_numbers_that_are_not_cards_stay(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub_text(text) == text


def test_the_same_card_spaced_differently_is_one_token(scrubber: Scrubber) -> None:
    assert scrubber.scrub_text("4111 1111 1111 1111") == scrubber.scrub_text("4111-1111-1111-1111")


@pytest.mark.parametrize(
    ("text", "expected_ips"),
    [
        ("from 10.0.0.1", 1),
        ("peer 192.168.1.20:8080 and 8.8.8.8.", 2),
        ("[2001:db8::1]:443", 1),
        ("fe80::1%eth0 and ::1", 2),
        ("mapped ::ffff:10.0.0.1", 1),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", 1),
    ],
)
def test_ip_addresses_become_tokens(scrubber: Scrubber, text: str, expected_ips: int) -> None:
    assert kinds(scrubber.scrub_text(text)) == ["ip"] * expected_ips


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4.5",  # a dotted run longer than an address
        "v1.2.3.4",
        "256.1.1.1",  # not a valid octet
        "010.0.0.1",  # leading zeros are ambiguous (octal); ipaddress refuses them
        "at 12:30:45",
        "mac 00:1a:2b:3c:4d:5e",
        "std::vector a :: b",
        "1.2.3",
    ],
)
def test_things_that_are_not_ips_stay(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub_text(text) == text


@pytest.mark.parametrize(
    ("text", "kept", "kind"),
    [
        ("Bearer abcdefgh12345678", "Bearer <", "bearer"),
        ("header: bearer abc.def-ghi_jkl~mno/pq+r==", "header: bearer <", "bearer"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic <", "authorization"),
        ('{"authorization": "Bearer abcdefgh12345678"}', '{"authorization": "Bearer <', "bearer"),
        ("authorization=s3cr3t-value", "authorization=<", "authorization"),
        (f"token={JWT}", "token=<", "jwt"),
    ],
)
def test_credentials_become_tokens_keeping_the_scheme(scrubber: Scrubber, text: str, kept: str, kind: str) -> None:
    # Given a text with a credential
    out = scrubber.scrub_text(text)
    # Then the words before the credential stay and the credential is one token
    assert out.startswith(kept)
    assert kinds(out) == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "the bearer bonds",  # a word, not a credential
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiJ4In0.sig",  # header decodes to JSON without "alg"
        "eyJbroken.eyJalso.x",  # header is not JSON
        "a.b.c",
    ],
)
def test_things_that_are_not_credentials_stay(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub_text(text) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


# --- db.statement -------------------------------------------------------------------------------


def test_sql_string_literals_become_tokens_and_numbers_placeholders(scrubber: Scrubber) -> None:
    # Given a statement with string and numeric literals, escaped quotes, a comment and parameters
    sql = (
        "SELECT t1.name, count(*) FROM users t1 WHERE email = 'alice@example.com' AND id IN (1, 2.5, 3e4, 0x1F) "
        "AND name = 'O''Brien' AND note = 'it\\'s' AND a = $1 AND b = :b AND c = ? -- 'comment'\n"
        'AND "col2" = 7 AND body = $$dollar$$ AND t = $q$x$q$'
    )
    # When it is scrubbed as db.statement
    out = scrubber.scrub_attribute("db.statement", sql)
    # Then identifiers, keywords, parameters and comments stay; literals are gone
    assert out.startswith("SELECT t1.name, count(*) FROM users t1 WHERE email = <db_literal:")
    assert "IN (?, ?, ?, ?)" in out
    assert "AND a = $1 AND b = :b AND c = ? -- 'comment'\nAND \"col2\" = ?" in out
    for literal in ("alice", "Brien", "it\\'s", "dollar", "$q$"):
        assert literal not in out
    assert kinds(out) == ["db_literal"] * 5
    assert scrubber.counts["db_literal"] == 10


def test_equal_sql_literals_correlate(scrubber: Scrubber) -> None:
    a = scrubber.scrub_attribute("db.query.text", "SELECT * FROM t WHERE u = 'alice'")
    b = scrubber.scrub_attribute("db.statement", "DELETE FROM s WHERE owner = 'alice'")
    assert TOKEN_RE.findall(a) == TOKEN_RE.findall(b)


def test_an_unterminated_literal_is_scrubbed_to_the_end(scrubber: Scrubber) -> None:
    out = scrubber.scrub_attribute("db.statement", "SELECT 'secret value")
    assert out.startswith("SELECT <db_literal:")
    assert "secret" not in out


def test_sql_literals_stay_when_the_rule_is_off() -> None:
    # Given db_statement_literals off, the other detectors still run on the statement
    scrubber = scrubber_with(db_statement_literals=False)
    out = scrubber.scrub_attribute("db.statement", "SELECT * FROM t WHERE id = 42 AND mail = 'a@example.com'")
    assert out.startswith("SELECT * FROM t WHERE id = 42 AND mail = '<email:")


# --- tokens, tenants, rules ---------------------------------------------------------------------


def test_equal_values_give_equal_tokens_within_a_tenant(scrubber: Scrubber) -> None:
    first = scrubber.scrub_text("login alice@example.com")
    second = scrubber.scrub_text("logout alice@example.com")
    other = scrubber.scrub_text("login bob@example.com")
    assert TOKEN_RE.findall(first) == TOKEN_RE.findall(second) != TOKEN_RE.findall(other)


def test_tenants_get_different_tokens() -> None:
    acme = Scrubber.for_tenant("acme", SECRET).scrub_text("alice@example.com")
    globex = Scrubber.for_tenant("globex", SECRET).scrub_text("alice@example.com")
    redeployed = Scrubber.for_tenant("acme", b"t" * 32).scrub_text("alice@example.com")
    assert len({acme, globex, redeployed}) == 3


def test_token_format(scrubber: Scrubber) -> None:
    assert re.fullmatch(r"<email:[0-9a-f]{12}>", scrubber.scrub_text("alice@example.com"))


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Scrubber(PiiRules(), b"short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Scrubber.for_tenant("acme", b"short")


def test_counts_by_kind(scrubber: Scrubber) -> None:
    scrubber.scrub_text("a@example.com b@example.com 10.0.0.1 4111111111111111 Bearer abcdefgh12345678")
    assert scrubber.counts == {"email": 2, "ip": 1, "card": 1, "bearer": 1}


def test_exempt_attributes_are_untouched() -> None:
    scrubber = scrubber_with(exempt_attributes=["net.peer.ip", "instance"])
    assert scrubber.scrub_attribute("net.peer.ip", "10.0.0.1") == "10.0.0.1"
    assert scrubber.scrub_attribute("net.host.ip", "10.0.0.1") != "10.0.0.1"
    pairs = [("__name__", "up"), ("instance", "10.0.0.1:9100"), ("user", "alice@example.com")]
    scrubbed = scrubber.scrub_labels(pairs)
    assert scrubbed[:2] == (("__name__", "up"), ("instance", "10.0.0.1:9100"))
    assert kinds(scrubbed[2][1]) == ["email"]


def test_the_metric_name_is_never_touched(scrubber: Scrubber) -> None:
    # Given a metric name that looks like PII (valid names can hold ':' and digits)
    pairs = [("__name__", "a::1"), ("ip", "::1")]
    # Then only the label value is scrubbed
    assert scrubber.scrub_labels(pairs)[0] == ("__name__", "a::1")
    assert kinds(scrubber.scrub_labels(pairs)[1][1]) == ["ip"]


def test_authorization_attributes_keep_only_the_scheme(scrubber: Scrubber) -> None:
    assert kinds(scrubber.scrub_attribute("http.request.header.authorization", "Bearer abc")) == ["bearer"]
    assert scrubber.scrub_attribute("http.request.header.authorization", "Bearer abc").startswith("Bearer <bearer:")
    assert scrubber.scrub_attribute("http.request.header.authorization", "Digest a=1, b=2").startswith(
        "Digest <authorization:"
    )
    assert kinds(scrubber.scrub_attribute("authorization", "opaque")) == ["authorization"]


def test_disabled_rules_leave_their_kind_alone() -> None:
    text = "alice@example.com 10.0.0.1 4111111111111111 Bearer abcdefgh12345678"
    assert kinds(scrubber_with(email=False).scrub_text(text)) == ["ip", "card", "bearer"]
    assert kinds(scrubber_with(ip_addresses=False).scrub_text(text)) == ["email", "card", "bearer"]
    assert kinds(scrubber_with(card_numbers=False).scrub_text(text)) == ["email", "ip", "bearer"]
    assert kinds(scrubber_with(bearer_tokens=False).scrub_text(text)) == ["email", "ip", "card"]


def test_disabled_scrubbing_changes_nothing() -> None:
    scrubber = scrubber_with(enabled=False, custom=[{"name": "x", "pattern": "x"}])
    text = "alice@example.com 10.0.0.1 x"
    assert scrubber.scrub_text(text) == text
    assert scrubber.scrub_attribute("db.statement", "SELECT 1") == "SELECT 1"
    assert scrubber.counts == {}


def test_custom_rules() -> None:
    # Given a tenant rule for employee ids
    scrubber = scrubber_with(custom=[{"name": "employee", "pattern": r"\bEMP-\d{6}\b"}])
    # When a text with an employee id and an e-mail address is scrubbed
    out = scrubber.scrub_text("EMP-123456 is alice@example.com")
    # Then both are tokens, the custom one named after the rule
    assert kinds(out) == ["custom:employee", "email"]
    assert scrubber.counts["custom:employee"] == 1
    assert scrubber.scrub_text(out) == out


def test_custom_rules_do_not_reach_into_tokens() -> None:
    # Given a custom pattern that would match the hex inside a token
    scrubber = scrubber_with(custom=[{"name": "hex", "pattern": r"[0-9a-f]{6,}"}])
    once = scrubber.scrub_text("alice@example.com and deadbeef00")
    # Then the email token is kept whole and scrubbing again changes nothing
    assert kinds(once) == ["email", "custom:hex"]
    assert scrubber.scrub_text(once) == once


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "bad", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"name": "empty", "pattern": "a*"}, "matches the empty string"),
        ({"name": "Bad Name", "pattern": "x"}, "name"),
    ],
)
def test_invalid_custom_rules_are_refused_at_load(rule: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CustomRule.model_validate(rule)


def test_rules_load_from_json() -> None:
    rules = PiiRules.model_validate_json('{"email": false, "exempt_attributes": ["net.peer.ip"]}')
    assert not rules.email
    assert rules.card_numbers
    assert "net.peer.ip" in rules.exempt_attributes


# --- properties ---------------------------------------------------------------------------------

# Text biased towards the characters the detectors look at, so that near-misses are common.
_pieces = st.sampled_from(
    [
        "@",
        ".",
        ":",
        "-",
        " ",
        "<",
        ">",
        "'",
        "=",
        "%",
        "/",
        "1",
        "4",
        "0",
        "255",
        "a",
        "ex",
        "eyJ",
        "Bearer ",
        "authorization: ",
        "4111111111111111",
        "10.0.0.1",
        "::1",
        "a@b.io",
        "com",
        "ff",
        JWT,
        "<email:0123456789ab>",
    ]
)
_texts = st.one_of(st.text(), st.lists(_pieces, max_size=25).map("".join))


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_scrub_text_never_raises_and_is_idempotent(text: str) -> None:
    scrubber = Scrubber.for_tenant("acme", SECRET, PiiRules(custom=(CustomRule(name="digits", pattern=r"\d{9}"),)))
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once


@settings(max_examples=200, deadline=None)
@given(_texts)
def test_scrubbing_db_statements_is_idempotent(text: str) -> None:
    scrubber = Scrubber.for_tenant("acme", SECRET)
    once = scrubber.scrub_attribute("db.statement", text)
    assert scrubber.scrub_attribute("db.statement", once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghij -_/", max_size=200))
def test_text_without_pii_is_unchanged(text: str) -> None:
    assert Scrubber.for_tenant("acme", SECRET).scrub_text(text) == text


def test_a_card_is_found_among_other_digit_groups(scrubber: Scrubber) -> None:
    out = scrubber.scrub_text("card 4111 1111 1111 1111 2025")
    assert out.startswith("card <card:")
    assert out.endswith("> 2025")
