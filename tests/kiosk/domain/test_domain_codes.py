"""Code digests as docs/contracts/codes.md fixes them, key files, typed-code normalising."""

import base64
import hashlib
import hmac

import pytest

from kiosk.domain.codes import (
    code_digest,
    draw_code,
    is_digest,
    new_code_key_text,
    normalise_code,
    parse_code_key,
)
from kiosk.domain.errors import BadRequest, ConfigError

KEY = bytes(range(32))
KEY_FILE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
# Computed outside Python: `printf 123456 | openssl dgst -sha256 -mac HMAC
#   -macopt hexkey:000102...1f -binary | base64 | tr '+/' '-_' | tr -d '='`
KNOWN = {
    "123456": "i6U59fkyw_yKZ8K4ZuJbvDJmN_PGyIt7DitmbjyzMGY",
    "00123456": "HMWwcPsgj-__Jhqa5f-O5tBzWZZH95LMl1mnMYvNXmE",
}


@pytest.mark.parametrize(("code", "digest"), sorted(KNOWN.items()))
def test_digest_matches_the_contract_known_answer(code, digest):
    assert code_digest(KEY, code) == digest


def test_digest_is_base64url_hmac_sha256_of_the_ascii_digits_unpadded():
    key = parse_code_key(KEY_FILE)
    mac = hmac.new(KEY, b"042042", hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode().replace("+", "-").replace("/", "_").rstrip("=")
    got = code_digest(key, "042042")
    assert got == expected
    assert len(got) == 43 and "=" not in got and "+" not in got and "/" not in got


def test_leading_zeros_matter():
    assert code_digest(KEY, "012345") != code_digest(KEY, "12345")


def test_key_file_whitespace_is_ignored():
    spaced = "  AAECAwQFBgcICQoL\n\tDA0ODxAREhMUFRYX GBkaGxwdHh8=  \r\n"
    assert parse_code_key(spaced) == KEY
    assert parse_code_key(KEY_FILE) == KEY


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",  # padding missing
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",  # base64url, not standard
    ],
)
def test_bad_base64_is_a_config_error_naming_file_and_key(text):
    with pytest.raises(ConfigError) as info:
        parse_code_key(text, "/etc/kiosk/site-code.key")
    err = info.value
    assert err.file == "/etc/kiosk/site-code.key"
    assert err.key == "keys.site_code_key_file"
    assert "base64" in err.reason


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_length_is_a_config_error(size):
    with pytest.raises(ConfigError, match=f"32 bytes, got {size}"):
        parse_code_key(base64.b64encode(bytes(size)).decode())


def test_a_new_key_file_round_trips_and_is_random():
    first, second = new_code_key_text(), new_code_key_text()
    assert first.endswith("\n") and len(parse_code_key(first)) == 32
    assert first != second


@pytest.mark.parametrize(
    ("typed", "digits"),
    [("123456", "123456"), ("123 456", "123456"), ("12-34-56", "123456"), (" 000001 ", "000001")],
)
def test_normalise_drops_spaces_and_dashes_and_keeps_leading_zeros(typed, digits):
    assert normalise_code(typed, 6) == digits


@pytest.mark.parametrize(
    "typed", ["12345", "1234567", "12345a", "", "１２３４５６", "12.456", "123\n456"]
)
def test_normalise_refuses_wrong_length_and_non_ascii_digits(typed):
    with pytest.raises(BadRequest) as info:
        normalise_code(typed, 6)
    assert info.value.code == "bad_request"


def test_normalise_honours_the_configured_length():
    assert normalise_code("1234 5678", 8) == "12345678"
    with pytest.raises(BadRequest, match="8 digits"):
        normalise_code("123456", 8)


def test_is_digest_accepts_real_digests():
    for code in ("000000", "999999", "123456", "31415926"):
        assert is_digest(code_digest(KEY, code))


@pytest.mark.parametrize(
    "text",
    [
        None,
        123,
        "",
        KNOWN["123456"] + "=",  # padded
        KNOWN["123456"][:-1],  # 42 characters
        "A" * 42 + "+",  # standard base64 alphabet, not base64url
        "A" * 41 + "/A",
        "A" * 42 + "!",
        "A" * 42 + "B",  # 43rd character carries bits beyond 32 bytes
        "A" * 21 + " " + "A" * 21,
    ],
)
def test_is_digest_refuses_anything_else(text):
    assert is_digest(text) is False


def test_draw_code_skips_taken_codes_and_gives_up_when_all_are_taken():
    seen = []

    def taken(code: str) -> bool:
        seen.append(code)
        return len(seen) < 3

    code = draw_code(6, taken)
    assert code == seen[-1] and len(seen) == 3
    assert len(code) == 6 and code.isdigit()
    with pytest.raises(RuntimeError, match="exhausted"):
        draw_code(6, lambda _c: True, attempts=5)
