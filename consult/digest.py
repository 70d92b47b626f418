"""The automatic summary of a consultation, computed from its own chat (no outside service):
who wrote how much, the user's first question, the astrologer's last substantial answer,
the most frequent meaningful words, and the billed time."""

import re
from collections import Counter
from dataclasses import dataclass

# Letters of any script, three or more; Devanagari's vowel signs and virama are marks, not
# letters, to `\w`: without them "नमस्ते" would count as "नमस".
WORD = re.compile(r"(?:[^\W\d_]|[\u0900-\u0903\u093a-\u094f\u0955-\u0957\u0962\u0963]){3,}")
SUBSTANTIAL = 8  # words: shorter answers ("ok", "thank you") are not the astrologer's answer
TOP_WORDS = 5
# Words that say nothing about the consultation itself (English and common Hinglish).
_STOP_TEXT = """
    the and for are but not you your yours with this that these those there their them they
    what when where which who whom why how was were will would can could should shall may
    might must have has had having does did doing done been being into onto from about above
    below over under again further then once here all any both each few more most other
    some such only own same than too very just also out off our ours his her hers its it's
    she him himself herself itself myself yourself ourselves themselves because until while
    during before after between through like get got let lets yes okay thanks thank please
    hello hii dear sir madam ji hai hain kya aur bhi nahi kar karo main mera meri mujhe aap
    aapka aapki hum tum koi kuch bahut abhi bas theek ache acha accha haan
"""
STOPWORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class Digest:
    user_messages: int
    user_words: int
    astrologer_messages: int
    astrologer_words: int
    first_question: str | None
    last_answer: str | None
    top_words: list[tuple[str, int]]
    billed_seconds: int | None


def digest(consultation, messages) -> Digest:
    """Summarise `messages` (oldest first) of `consultation`."""
    mine = [m for m in messages if m.sender_id == consultation.user_id]
    theirs = [m for m in messages if m.sender_id == consultation.astrologer_id]
    question = next((m.text for m in mine if "?" in m.text), mine[0].text if mine else None)
    answers = [m.text for m in theirs if len(m.text.split()) >= SUBSTANTIAL]
    last_answer = answers[-1] if answers else (theirs[-1].text if theirs else None)
    words = Counter(
        w
        for m in messages
        for w in (token.lower() for token in WORD.findall(m.text))
        if w not in STOPWORDS
    )
    return Digest(
        user_messages=len(mine),
        user_words=sum(len(m.text.split()) for m in mine),
        astrologer_messages=len(theirs),
        astrologer_words=sum(len(m.text.split()) for m in theirs),
        first_question=question,
        last_answer=last_answer,
        top_words=[(w, n) for w, n in words.most_common(TOP_WORDS) if n > 1]
        or words.most_common(3),
        billed_seconds=consultation.billed_seconds,
    )
