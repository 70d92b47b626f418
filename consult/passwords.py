"""What makes a password too easy to guess, beyond its length: being one of the passwords
people choose most, having almost no variety, running along the keyboard or the alphabet,
or containing the username. Each rule answers with the reason a person can act on."""

from pathlib import Path

# The commonest choices in published breach studies, by their shape (digits in a row,
# keyboard walks, "password" dressed up, the names people reach for first): one a line.
COMMON = frozenset(
    (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8").split()
)
MIN_DISTINCT = 4  # "11111111", "12121212" and "aaaabbbb" are not passwords


def weakness(password: str, username: str) -> str | None:
    """Why `password` is too easy to guess, or None when it is not."""
    folded = password.casefold()
    if not password.strip():
        return "Password cannot be only spaces"
    if len(set(folded)) < MIN_DISTINCT:
        return f"Password needs at least {MIN_DISTINCT} different characters"
    if folded in COMMON or folded.strip(" !.1") in COMMON:
        return "That password is one of the most common; please choose another"
    if _in_a_row(folded):
        return "Password cannot be a run of neighbouring keys, letters or digits"
    if len(username) >= 3 and username.casefold() in folded:
        return "Password cannot contain the username"
    return None


def _in_a_row(text: str) -> bool:
    """Every character one step from the last, in one direction ("abcdefgh", "98765432")."""
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}
    return steps in ({1}, {-1})
