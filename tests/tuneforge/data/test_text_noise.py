"""The pure augmentation functions: they change the text, by about `rate`, never to nothing, reproducibly."""

import random
import unicodedata

import pytest

from tuneforge.data.text_noise import QWERTY_NEIGHBOURS, char_noise, word_dropout, word_swap

SENTENCE = "my card payment was declined twice at the shop yesterday and I need it fixed"
LONG = " ".join(
    f"{word}{i}" for i, word in enumerate(["transfer", "refund", "balance", "account", "pending"] * 12)
)
FUNCTIONS = [char_noise, word_dropout, word_swap]


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@pytest.mark.parametrize("noise", FUNCTIONS)
def test_changes_the_text_for_every_seed(noise):
    for seed in range(50):
        assert noise(SENTENCE, 0.1, random.Random(seed)) != SENTENCE


@pytest.mark.parametrize("noise", FUNCTIONS)
def test_same_seed_same_result_and_seeds_differ(noise):
    first = [noise(SENTENCE, 0.2, random.Random(seed)) for seed in range(20)]
    again = [noise(SENTENCE, 0.2, random.Random(seed)) for seed in range(20)]
    assert first == again
    assert len(set(first)) > 10


@pytest.mark.parametrize("noise", FUNCTIONS)
@pytest.mark.parametrize("text", ["a", "é", "ok", "I", "hi there", "no-letters? 123 !!", "x y", "👍"])
@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
def test_never_returns_an_empty_text(noise, text, rate):
    for seed in range(30):
        assert noise(text, rate, random.Random(seed)).strip()


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_char_noise_touches_about_rate_of_the_letters(rate):
    letters = sum(ch.isalpha() for ch in LONG)
    wanted = round(rate * letters)
    for seed in range(5):
        # A typo or deletion is one edit, a swap of two letters two: the distance counts touched letters.
        distance = levenshtein(LONG, char_noise(LONG, rate, random.Random(seed)))
        assert 0.8 * wanted <= distance <= wanted + 1


def test_char_noise_touches_at_least_one_letter_even_at_rate_zero():
    for seed in range(20):
        assert 1 <= levenshtein(SENTENCE, char_noise(SENTENCE, 0.0, random.Random(seed))) <= 2


def test_char_noise_only_uses_the_texts_letters_or_neighbouring_keys():
    text = "hello world"
    allowed = set(text) | {key for ch in text if ch in QWERTY_NEIGHBOURS for key in QWERTY_NEIGHBOURS[ch]}
    for seed in range(50):
        noisy = char_noise(text, 0.3, random.Random(seed))
        assert set(noisy) <= allowed
        assert noisy.count(" ") == 1  # only letters are touched, never the spaces between words


def test_char_noise_keeps_the_case_of_a_mistyped_letter():
    for seed in range(30):
        noisy = char_noise("PAYMENT DECLINED", 0.3, random.Random(seed))
        assert noisy == noisy.upper()


def test_qwerty_neighbours_are_symmetric_and_adjacent():
    assert len(QWERTY_NEIGHBOURS) == 26
    for key, near in QWERTY_NEIGHBOURS.items():
        assert key not in near
        for other in near:
            assert key in QWERTY_NEIGHBOURS[other], (key, other)
    assert set(QWERTY_NEIGHBOURS["g"]) == set("fhtyvb")
    assert set(QWERTY_NEIGHBOURS["q"]) == set("wa")


def test_char_noise_is_unicode_safe():
    text = "Cafe\u0301 naïve Привет 東京 👩\u200d💻 Straße"
    emoji = "👩\u200d💻"
    for seed in range(100):
        noisy = char_noise(text, 0.3, random.Random(seed))
        assert noisy != text
        noisy.encode("utf-8")
        assert emoji in noisy  # not letters: never touched, never split
        assert set(noisy) <= set(text) | set("qwertyuiopasdfghjklzxcvbnmQWERTYUIOPASDFGHJKLZXCVBNM")
        for i, ch in enumerate(noisy):
            if unicodedata.combining(ch):
                # An accent always stays on a letter: never stranded at the start or after a space.
                assert i > 0 and noisy[i - 1].isalpha(), (seed, noisy)


def test_char_noise_without_any_editable_letter_returns_the_text():
    assert char_noise("123 !!", 0.5, random.Random(0)) == "123 !!"
    assert char_noise("", 0.5, random.Random(0)) == ""


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_word_dropout_drops_about_rate_of_the_words(rate):
    words = LONG.split()
    for seed in range(5):
        kept = word_dropout(LONG, rate, random.Random(seed)).split()
        assert len(words) - len(kept) == round(rate * len(words))
        assert set(kept) <= set(words) and kept == [w for w in words if w in set(kept)]  # order kept


def test_word_dropout_never_drops_every_word_and_leaves_single_words_alone():
    assert word_dropout("two words", 1.0, random.Random(0)).split()[0] in {"two", "words"}
    assert len(word_dropout("two words", 1.0, random.Random(0)).split()) == 1
    assert word_dropout("alone", 1.0, random.Random(0)) == "alone"
    assert len(word_dropout(SENTENCE, 0.0, random.Random(0)).split()) == len(SENTENCE.split()) - 1


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.4])
def test_word_swap_moves_about_rate_of_the_words(rate):
    words = LONG.split()
    for seed in range(5):
        swapped = word_swap(LONG, rate, random.Random(seed)).split()
        assert sorted(swapped) == sorted(words)
        moved = sum(a != b for a, b in zip(words, swapped, strict=True))
        assert moved == 2 * max(1, round(rate * len(words) / 2))
        # Only neighbours trade places.
        assert all(swapped[i] in words[max(0, i - 1) : i + 2] for i in range(len(words)))


def test_word_swap_needs_two_different_neighbours():
    assert word_swap("alone", 0.5, random.Random(0)) == "alone"
    assert word_swap("very very", 0.5, random.Random(0)) == "very very"
    assert word_swap("so very very", 0.5, random.Random(0)) == "very so very"


def test_word_methods_are_unicode_safe():
    text = "Привет мир 東京 café 👩\u200d💻"
    for seed in range(30):
        for noise in (word_dropout, word_swap):
            noisy = noise(text, 0.3, random.Random(seed))
            assert noisy != text and set(noisy.split()) <= set(text.split())
