"""Entity-preserving variants of token-classification rows: noise outside the entities, and mention replacement.

A row is a sentence (tokens joined by single spaces) and its tags (token_files.py); a variant changes both
together, so every token keeps its tag:
- word_dropout, word_swap, char_noise: the text methods of text_noise.py, on the words outside any entity (tag
  `O`) only: an entity's words, and so its tags, are never dropped, moved or misspelt. Dropout drops `O` words
  (never every word); swap exchanges two neighbouring `O` words; char_noise makes its typos inside `O` words
  (a word keeps at least one letter).
- mention_replacement (Dai and Adel, "An Analysis of Simple Data Augmentation for Named Entity Recognition",
  COLING 2020): an entity is replaced by another entity of the same type seen in the train split, of any length;
  its tags are rewritten `B-`, `I-`, ... for the new words. `rate` is the share of the sentence's entities replaced
  (at least one).

Each method returns the tokens and tags unchanged when it cannot apply (no `O` word, one word, no other entity of
the type). The variant is made with augmentation.augment_frame's machinery (provenance, seeds, deduplication,
balancing), which calls `token_variant` for each variant.
"""

import random
from collections.abc import Callable, Sequence

from tuneforge.base.spec import AugmentConfig
from tuneforge.data.bio import BEGIN, INSIDE, OUTSIDE, entity_spans
from tuneforge.data.text_noise import char_noise, swap_neighbours
from tuneforge.data.textnorm import normalize_text
from tuneforge.data.token_files import decode_tags, encode_tags, sentence_tokens

MENTION_REPLACEMENT = "mention_replacement"
# Entities are replaced first, so the noise that follows may also touch the words around a new entity.
TOKEN_METHOD_ORDER = (MENTION_REPLACEMENT, "word_dropout", "word_swap", "char_noise")

Tokens = list[str]
Tags = list[str]
# entity type -> its distinct entities (their words), in first-seen order
Pool = dict[str, list[tuple[str, ...]]]


def mention_pool(labelled: Sequence[tuple[str, str]]) -> Pool:
    """The distinct entities of each type in (text, label cell) rows, in the order first seen."""
    pool: Pool = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for text, cell in labelled:
        tokens = sentence_tokens(text)
        for start, end, kind in entity_spans(decode_tags(cell)):
            words = tuple(tokens[start:end])
            if (kind, words) not in seen:
                seen.add((kind, words))
                pool.setdefault(kind, []).append(words)
    return pool


def _units(count: int, rate: float) -> int:
    return max(1, round(rate * count))


def replace_mentions(tokens: Tokens, tags: Tags, pool: Pool, rate: float, rng: random.Random) -> tuple[Tokens, Tags]:
    """About `rate` of the entities (at least one) replaced by another entity of the same type from `pool`."""
    entities = entity_spans(tags)
    # An entity can be replaced when its type has another entity in the pool.
    replaceable = [(start, end, kind) for start, end, kind in entities
                   if any(words != tuple(tokens[start:end]) for words in pool.get(kind, ()))]
    if not replaceable:
        return tokens, tags
    chosen = sorted(rng.sample(replaceable, min(len(replaceable), _units(len(entities), rate))))
    new_tokens, new_tags, position = [], [], 0
    for start, end, kind in chosen:
        current = tuple(tokens[start:end])
        others = [words for words in pool[kind] if words != current]
        words = list(rng.choice(others))
        new_tokens += tokens[position:start] + words
        new_tags += tags[position:start] + [BEGIN + kind] + [INSIDE + kind] * (len(words) - 1)
        position = end
    return new_tokens + tokens[position:], new_tags + tags[position:]


def drop_outside(tokens: Tokens, tags: Tags, rate: float, rng: random.Random) -> tuple[Tokens, Tags]:
    """About `rate` of the `O` words dropped (at least one), never every word of the sentence."""
    outside = [i for i, tag in enumerate(tags) if tag == OUTSIDE]
    count = min(len(outside), len(tokens) - 1, _units(len(outside), rate))
    if count <= 0:
        return tokens, tags
    dropped = set(rng.sample(outside, count))
    kept = [i for i in range(len(tokens)) if i not in dropped]
    return [tokens[i] for i in kept], [tags[i] for i in kept]


def swap_outside(tokens: Tokens, tags: Tags, rate: float, rng: random.Random) -> tuple[Tokens, Tags]:
    """Neighbouring `O` words swapped so that about `rate` of the `O` words move (at least one pair; pairs do not
    overlap, identical neighbours are never "swapped"); the tags stay `O` where they were."""
    outside = sum(tag == OUTSIDE for tag in tags)
    candidates = [i for i in range(len(tokens) - 1)
                  if tags[i] == tags[i + 1] == OUTSIDE and tokens[i] != tokens[i + 1]]
    if not candidates:
        return tokens, tags
    tokens = list(tokens)
    swap_neighbours(tokens, candidates, _units(outside, rate / 2), rng)
    return tokens, tags


def noise_outside(tokens: Tokens, tags: Tags, rate: float, rng: random.Random) -> tuple[Tokens, Tags]:
    """Typos (text_noise.char_noise) on about `rate` of the letters of the `O` words (at least one); each word keeps a
    letter, so no word disappears."""
    # One entry per letter of an `O` word, holding the word's position: a sample of letters is a sample of words
    # weighted by their letters.
    letters = [i for i, (token, tag) in enumerate(zip(tokens, tags, strict=True)) if tag == OUTSIDE
               for character in token if character.isalpha()]
    if not letters:
        return tokens, tags
    touched: dict[int, int] = {}
    for i in rng.sample(letters, min(len(letters), _units(len(letters), rate))):
        touched[i] = touched.get(i, 0) + 1
    tokens = list(tokens)
    for i in sorted(touched):
        word_letters = sum(character.isalpha() for character in tokens[i])
        changed = normalize_text(char_noise(tokens[i], touched[i] / word_letters, rng))
        if changed and " " not in changed:
            tokens[i] = changed
    return tokens, tags


METHODS: dict[str, Callable[..., tuple[Tokens, Tags]]] = {
    "word_dropout": drop_outside, "word_swap": swap_outside, "char_noise": noise_outside,
}


def token_variant(cfg: AugmentConfig, pool: Pool):
    """The variant maker augment_frame calls: (text, label cell, rng, force) -> (text, label cell, methods). Which
    methods fire is drawn up front, one draw each in TOKEN_METHOD_ORDER, as for text variants; `force` (balancing)
    applies one method at random when none changed the sentence."""

    def apply(name: str, tokens: Tokens, tags: Tags, rng: random.Random) -> tuple[Tokens, Tags]:
        rate = getattr(cfg, name).rate
        if name == MENTION_REPLACEMENT:
            return replace_mentions(tokens, tags, pool, rate, rng)
        return METHODS[name](tokens, tags, rate, rng)

    def vary(text: str, label: str, rng: random.Random, force: bool) -> tuple[str, str, list[str]]:
        tokens, tags = sentence_tokens(text), decode_tags(label)
        fired = [name for name in TOKEN_METHOD_ORDER if rng.random() < getattr(cfg, name).probability]
        applied: list[str] = []
        for name in fired:
            changed = apply(name, tokens, tags, rng)
            if changed[0] != tokens:
                (tokens, tags), applied = changed, [*applied, name]
        if force and not applied:
            for name in rng.sample(TOKEN_METHOD_ORDER, len(TOKEN_METHOD_ORDER)):
                changed = apply(name, tokens, tags, rng)
                if changed[0] != tokens:
                    (tokens, tags), applied = changed, [name]
                    break
        return " ".join(tokens), encode_tags(tags), applied

    return vary
