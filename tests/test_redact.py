"""Masking: known secrets, URL userinfo, credential parameters and headers."""

from __future__ import annotations

import pytest

from synthprobe.redact import Redactor

R = Redactor({"s3cr3t-token", "p@ss w/rd", "ab"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer s3cr3t-token", "Bearer ***"),
        ("http://127.0.0.1/?q=p%40ss%20w%2Frd", "http://127.0.0.1/?q=***"),
        ("https://user:pw@127.0.0.1/feed", "https://***@127.0.0.1/feed"),
        (
            "http://127.0.0.1/feed?api_key=zzz&limit=10",
            "http://127.0.0.1/feed?api_key=***&limit=10",
        ),
        ("http://127.0.0.1/x?access_token=abc#frag", "http://127.0.0.1/x?access_token=***#frag"),
        (
            "http://127.0.0.1/x?X-Amz-Signature=abc&a=1",
            "http://127.0.0.1/x?X-Amz-Signature=***&a=1",
        ),
        ("error for url 'http://u:p@127.0.0.1/'", "error for url 'http://***@127.0.0.1/'"),
        ("nothing to hide, ab is short", "nothing to hide, ab is short"),
    ],
    ids=[
        "secret",
        "url-encoded-secret",
        "userinfo",
        "api-key-param",
        "token-param",
        "signature-param",
        "userinfo-in-message",
        "short-values-untouched",
    ],
)
def test_text(text: str, expected: str) -> None:
    assert R.text(text) == expected


@pytest.mark.parametrize("name", ["Authorization", "cookie", "Proxy-Authorization", "X-Api-Key"])
def test_credential_headers_are_masked_whatever_their_value(name: str) -> None:
    assert Redactor().header(name, "anything") == "***"


def test_other_headers_mask_only_secrets() -> None:
    assert R.header("X-Trace", "id s3cr3t-token") == "id ***"
    assert R.header("User-Agent", "synthprobe") == "synthprobe"
