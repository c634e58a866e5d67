"""Sentences of words as a token classifier reads them: sub-tokens in windows of at most max_seq_length, each word
labelled (in training) and predicted in exactly one window, from its first sub-token.

A sentence is a list of words (a row's text split on its single spaces). The tokenizer splits each word into
sub-tokens on its own (`is_split_into_words`: words are never merged), and a word's prediction is read from its
first sub-token, as BERT's NER recipe does (Devlin et al. 2019); a fast (Rust) tokenizer is needed for the
sub-token -> word map.

A sentence of at most max_seq_length sub-tokens (special tokens included) is one window. A longer one is never
truncated: it is cut into windows of whole words, each within max_seq_length, consecutive windows sharing up to
`stride` sub-tokens of words. The words two windows share are split between them at the middle, so each word is
owned (labelled, predicted) by exactly one window and has context on both sides. A single word longer than a window
(a pasted URL) gets a window of its own, cut to fit: its first sub-token, the one read, is kept (`words_cut`). A word
the tokenizer makes no sub-token of (a lone zero-width or control character) has nothing to read (`words_unread`):
it gets no label in training and uniform scores in prediction (so the first label, `O`, when predicted).
"""

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from tuneforge.base.errors import StageError
from tuneforge.inference.torch_predictor import Classifier, Predictions

IGNORED = -100  # the label the loss skips (PyTorch's cross-entropy ignore_index, the collator's padding label)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Window:
    sentence: int  # the sentence's index in the batch encoded
    start: int  # its first word
    end: int  # one past its last word
    own_start: int  # the first word it labels and predicts
    own_end: int  # one past the last


@dataclass(frozen=True)
class Encoded:
    features: list[dict]  # per window: the model inputs (input_ids, attention_mask, token_type_ids), unpadded
    word_ids: list[list[int | None]]  # per window and position: the word of the sentence, None for special tokens
    windows: list[Window]
    words_cut: int = 0  # words longer than a window, their later sub-tokens cut

    def facts(self) -> dict:
        """What meta.json records: sentences, those read in more than one window, windows, words cut or unread."""
        per_sentence = Counter(window.sentence for window in self.windows)
        first = {(window.sentence, word) for window, ids in zip(self.windows, self.word_ids, strict=True)
                 for _, word in first_subtokens(ids, window)}
        owned = sum(window.own_end - window.own_start for window in self.windows)
        return {
            "sentences": len(per_sentence), "windowed_sentences": sum(count > 1 for count in per_sentence.values()),
            "windows": len(self.windows), "words": owned, "words_unread": owned - len(first),
            "words_cut": self.words_cut,
        }


def plan_windows(counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(start, end, own_start, own_end) of each window over words with `counts` sub-tokens: whole words, at most
    `budget` sub-tokens each (a longer single word alone), the next going back over up to `stride` sub-tokens of
    the last one's words; the shared words split at the middle. Every word is owned by exactly one window, in order
    (windows that would own none are left out)."""
    words = len(counts)
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < words and (end == start or used + counts[end] <= budget):
            used += counts[end]
            end += 1
        spans.append((start, end))
        if end >= words:
            break
        # Back over the last words, as far as `stride` allows while the word at `end` still fits after them: the
        # next window always reaches past this one.
        room, nxt, shared = min(stride, budget - counts[end]), end, 0
        while nxt - 1 > start and shared + counts[nxt - 1] <= room:
            nxt -= 1
            shared += counts[nxt]
        start = nxt
    bounds = [0] + [(spans[i][0] + spans[i - 1][1]) // 2 for i in range(1, len(spans))] + [words]
    return [(s, e, bounds[i], bounds[i + 1]) for i, (s, e) in enumerate(spans) if bounds[i] < bounds[i + 1]]


def require_fast(tokenizer, where: str) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise StageError(
            f"{where}: its tokenizer is not a fast (Rust, tokenizer.json) tokenizer; token classification needs one "
            "to map sub-tokens to words"
        )


def encode_words(tokenizer, sentences: Sequence[Sequence[str]], max_length: int, stride: int) -> Encoded:
    """The windows of every sentence, tokenized with the model's special tokens (see the module's docstring)."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    sentences = [list(words) for words in sentences]
    plain = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False) if sentences else None
    windows, cut = [], 0
    for index, words in enumerate(sentences):
        per_word = Counter(word for word in plain.word_ids(index) if word is not None)
        counts = [per_word.get(word, 0) for word in range(len(words))]
        windows += [Window(index, *planned) for planned in plan_windows(counts, budget, stride)]
        cut += sum(count > budget for count in counts)
    if not windows:
        return Encoded(features=[], word_ids=[], windows=[])
    encoded = tokenizer(
        [sentences[window.sentence][window.start:window.end] for window in windows], is_split_into_words=True,
        truncation=True, max_length=max_length,
    )
    keys = [key for key in MODEL_INPUTS if key in encoded]
    return Encoded(
        features=[{key: encoded[key][i] for key in keys} for i in range(len(windows))],
        word_ids=[[None if word is None else window.start + word for word in encoded.word_ids(i)]
                  for i, window in enumerate(windows)],
        windows=windows, words_cut=cut,
    )


def first_subtokens(word_ids: Sequence[int | None], window: Window) -> list[tuple[int, int]]:
    """(position, word) of the first sub-token of each word the window owns, in order."""
    seen, found = set(), []
    for position, word in enumerate(word_ids):
        if word is not None and window.own_start <= word < window.own_end and word not in seen:
            seen.add(word)
            found.append((position, word))
    return found


def window_labels(
    word_ids: Sequence[int | None], window: Window, tag_ids: Sequence[int], later: Sequence[int] | None = None
) -> list[int]:
    """The labels of one window: the tag id of each owned word on its first sub-token; on its later sub-tokens
    `later[tag id]` when given (e.g. the tag's I- form), else IGNORED; IGNORED on special tokens and on the words
    the window shares without owning them."""
    labels, previous = [], None
    for word in word_ids:
        if word is None or not window.own_start <= word < window.own_end:
            labels.append(IGNORED)
        elif word != previous:
            labels.append(tag_ids[word])
        else:
            labels.append(IGNORED if later is None else later[tag_ids[word]])
        previous = word
    return labels


def predict_words(
    classifier: Classifier, sentences: Sequence[Sequence[str]], *, batch_size: int, max_length: int, stride: int
) -> Predictions:
    """One (words, labels) logits array per sentence, each word's row read from its first sub-token in the window
    that owns it (zeros for a word with no sub-token). Windows are batched by length (less padding)."""
    started = time.perf_counter()
    tokenizer = classifier.tokenizer
    require_fast(tokenizer, str(classifier.path))
    encoded = encode_words(tokenizer, sentences, max_length, stride)
    logits = [np.zeros((len(words), len(classifier.labels)), dtype=np.float64) for words in sentences]
    order = sorted(range(len(encoded.windows)), key=lambda i: len(encoded.features[i]["input_ids"]))
    pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    with torch.no_grad():
        for begin in range(0, len(order), batch_size):
            rows = order[begin:begin + batch_size]
            batch = pad([encoded.features[i] for i in rows]).to(classifier.device)
            output = classifier.model(**batch).logits.float().cpu().double().numpy()
            width = output.shape[1]
            for row, i in zip(output, rows, strict=True):
                window, ids = encoded.windows[i], encoded.word_ids[i]
                # A left-padding tokenizer puts its padding before the window's own positions.
                shift = width - len(ids) if tokenizer.padding_side == "left" else 0
                for position, word in first_subtokens(ids, window):
                    logits[window.sentence][word] = row[position + shift]
    return Predictions(logits=logits, seconds=time.perf_counter() - started)

