"""Text augmentation as pure functions: (text, rate, rng) -> new text.

Each function draws only from the `random.Random` it is given, so a seeded rng gives the same result on
every run and machine. `rate` is the share of letters (char_noise) or words (word_dropout, word_swap)
touched; every function touches at least one unit when it can, so `rate=0` still makes a minimal change
(a method is switched off by its probability in the spec, not by its rate). None ever returns an empty
text: when a text is too short for a method (one word for the word methods) it comes back unchanged.
"""

import random
import unicodedata

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Keys joined by a zero-width joiner or variation selector belong with the character before them.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def _neighbour_map() -> dict[str, str]:
    # Rows are staggered: key i of a row sits between keys i and i+1 of the row above,
    # and between keys i-1 and i of the row below.
    neighbours: dict[str, str] = {}
    for r, row in enumerate(_QWERTY_ROWS):
        for i, key in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:
                above = _QWERTY_ROWS[r - 1]
                near += [above[j] for j in (i, i + 1) if j < len(above)]
            if r < len(_QWERTY_ROWS) - 1:
                below = _QWERTY_ROWS[r + 1]
                near += [below[j] for j in (i - 1, i) if 0 <= j < len(below)]
            neighbours[key] = "".join(near)
    return neighbours


QWERTY_NEIGHBOURS = _neighbour_map()


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks attached, so an edit never strands an accent."""
    clusters: list[str] = []
    for ch in text:
        if clusters and (unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch in _JOINERS):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def _units(count: int, rate: float) -> int:
    return max(1, round(rate * count))


def char_noise(text: str, rate: float, rng: random.Random) -> str:
    """Typos on about `rate` of the letters (at least one): adjacent QWERTY key, deletion, or swap with
    the next letter. Non-ASCII letters get deletions and swaps only; the last letter is never deleted."""
    clusters = _clusters(text)
    letters = [i for i, cluster in enumerate(clusters) if cluster[0].isalpha()]
    if not letters:
        return text
    wanted = _units(len(letters), rate)
    is_letter = set(letters)
    out = list(clusters)
    used: set[int] = set()
    touched = deleted = 0
    # Walk the letters in random order until enough are touched: a letter with no possible edit
    # (a lone non-ASCII letter) is passed over instead of silently leaving the text unchanged.
    for i in rng.sample(letters, len(letters)):
        if touched >= wanted:
            break
        if i in used:
            continue
        base = clusters[i][0]
        edits = []
        if base.lower() in QWERTY_NEIGHBOURS:
            edits.append("typo")
        if len(letters) - deleted > 1:
            edits.append("delete")
        nxt = i + 1
        if nxt in is_letter and nxt not in used and clusters[nxt] != clusters[i]:
            edits.append("swap")
        if not edits:
            continue
        edit = rng.choice(edits)
        if edit == "typo":
            key = rng.choice(QWERTY_NEIGHBOURS[base.lower()])
            out[i] = key.upper() if base.isupper() else key
            used.add(i)
            touched += 1
        elif edit == "delete":
            out[i] = ""
            used.add(i)
            deleted += 1
            touched += 1
        else:
            out[i], out[nxt] = clusters[nxt], clusters[i]
            used.update((i, nxt))
            touched += 2
    return "".join(out)


def word_dropout(text: str, rate: float, rng: random.Random) -> str:
    """Drop about `rate` of the whitespace-separated words (at least one, never all); the kept words
    are joined by single spaces. A one-word text comes back unchanged."""
    words = text.split()
    if len(words) < 2:
        return text
    count = min(len(words) - 1, _units(len(words), rate))
    dropped = set(rng.sample(range(len(words)), count))
    return " ".join(word for k, word in enumerate(words) if k not in dropped)


def word_swap(text: str, rate: float, rng: random.Random) -> str:
    """Swap neighbouring words so that about `rate` of the words move (at least one pair); pairs do not
    overlap and identical neighbours are never "swapped". Words are joined by single spaces."""
    words = text.split()
    if len(words) < 2:
        return text
    swaps = _units(len(words), rate / 2)  # each swap moves two words
    candidates = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    done = swap_neighbours(words, candidates, swaps, rng)
    return " ".join(words) if done else text


def swap_neighbours(items: list, candidates: list[int], swaps: int, rng: random.Random) -> int:
    """Swap up to `swaps` pairs (i, i + 1), i drawn from `candidates` in a shuffled order, no item in two pairs;
    in place. Returns how many pairs were swapped."""
    rng.shuffle(candidates)
    used: set[int] = set()
    done = 0
    for i in candidates:
        if done >= swaps:
            break
        if i in used or i + 1 in used:
            continue
        items[i], items[i + 1] = items[i + 1], items[i]
        used.update((i, i + 1))
        done += 1
    return done


METHODS = {"char_noise": char_noise, "word_dropout": word_dropout, "word_swap": word_swap}
