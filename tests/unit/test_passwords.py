"""The password rule beyond length (issue 13's smaller points): common, uniform, in a row,
or holding the username is refused with a reason; ordinary passphrases pass."""

import pytest

from consult.passwords import weakness


@pytest.mark.parametrize(
    "password, reason",
    [
        (" " * 8, "Password cannot be only spaces"),
        ("\t\t\t\t\t\t\t\t", "Password cannot be only spaces"),
        ("11111111", "Password needs at least 4 different characters"),
        ("12121212", "Password needs at least 4 different characters"),
        ("aaaabbbb", "Password needs at least 4 different characters"),
        ("12345678", "That password is one of the most common; please choose another"),
        ("Password1", "That password is one of the most common; please choose another"),
        ("QWERTYUIOP", "That password is one of the most common; please choose another"),
        ("iloveyou!", "That password is one of the most common; please choose another"),
        ("bcdefghij", "Password cannot be a run of neighbouring keys, letters or digits"),
        ("876543210", "Password cannot be a run of neighbouring keys, letters or digits"),
        ("asha-secret-9", "Password cannot contain the username"),
    ],
)
def test_an_easy_password_is_refused_with_the_reason(password, reason):
    assert weakness(password, "asha") == reason


@pytest.mark.parametrize(
    "password", ["consult-demo", "test-password", "correct horse battery", "Tulsi@Varanasi7"]
)
def test_an_ordinary_passphrase_passes(password):
    assert weakness(password, "asha") is None
