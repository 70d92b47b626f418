"""The automatic summary of a chat: who wrote how much, the first question, the last
substantial answer and the words that matter, from the messages alone."""

from types import SimpleNamespace

from consult.digest import digest

USER, ASTROLOGER = 1, 2
CONSULTATION = SimpleNamespace(user_id=USER, astrologer_id=ASTROLOGER, billed_seconds=120)


def chat(*lines):
    return [SimpleNamespace(sender_id=who, text=text) for who, text in lines]


def test_counts_each_partys_messages_and_words():
    d = digest(CONSULTATION, chat((USER, "Hello there"), (ASTROLOGER, "Namaste"), (USER, "Hi")))
    assert (d.user_messages, d.user_words) == (2, 3)
    assert (d.astrologer_messages, d.astrologer_words) == (1, 1)
    assert d.billed_seconds == 120


def test_the_first_question_is_the_users_first_line_with_a_question_mark():
    d = digest(CONSULTATION, chat((USER, "Hello"), (USER, "Will I move?"), (USER, "And marry?")))
    assert d.first_question == "Will I move?"
    assert digest(CONSULTATION, chat((USER, "Hello"))).first_question == "Hello"


def test_the_last_answer_is_the_last_substantial_one_not_a_short_reply():
    long_answer = "Your career turns a corner in the spring, with a move to the coast."
    d = digest(CONSULTATION, chat((ASTROLOGER, long_answer), (ASTROLOGER, "Ok, thank you")))
    assert d.last_answer == long_answer
    assert digest(CONSULTATION, chat((ASTROLOGER, "Ok"))).last_answer == "Ok"


def test_top_words_leave_out_stopwords_and_words_said_once():
    d = digest(
        CONSULTATION,
        chat(
            (USER, "What about my career and my career change?"),
            (ASTROLOGER, "The career stars favour travel; travel brings luck."),
        ),
    )
    assert d.top_words == [("career", 3), ("travel", 2)]


def test_an_empty_chat_has_nothing_to_say():
    d = digest(CONSULTATION, [])
    assert (d.first_question, d.last_answer, d.top_words) == (None, None, [])


def test_hindi_words_keep_their_vowel_signs():
    said = "कुंडली में शादी का योग"
    d = digest(CONSULTATION, chat((USER, said), (ASTROLOGER, "शादी का योग अच्छा है"), (USER, said)))
    assert ("शादी", 3) in d.top_words and ("कुंडली", 2) in d.top_words
