"""Stages split and augment with model.task token-classification: sentences cut by iterative stratification over
the entity types they hold (every type in every split, no sentence in two splits, sentences without an entity in
proportion), counted as mentions per entity type; augmentation that keeps every entity and its tags: noise on `O`
words only, mentions replaced by others of their type from the train split, provenance on every row."""

import json
from pathlib import Path

import pandas as pd

from stages import augment, split
from tests.helpers.token_classification import TYPES, sentences, validated_frame
from tuneforge.base.spec import AugmentConfig, BalanceConfig, ModelConfig, NoiseConfig, SplitConfig
from tuneforge.data.bio import entity_spans, entity_types, ill_formed
from tuneforge.data.textnorm import text_key

TOKEN = ModelConfig(task="token-classification")
OFF = NoiseConfig(probability=0.0)
ON = NoiseConfig(probability=1.0, rate=0.3)


def write_validated(frame: pd.DataFrame) -> None:
    Path("data/validated").mkdir(parents=True, exist_ok=True)
    frame.to_parquet("data/validated/train.parquet", index=False)


def mentions(frame: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cell in frame["label"]:
        for _, _, kind in entity_spans(json.loads(cell)):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def test_every_entity_type_reaches_every_split_and_no_sentence_is_in_two(in_tmp_dir):
    rows = validated_frame(sentences(200))
    variants = rows.iloc[:3].assign(text=lambda f: f["text"].str.upper(), source_row=[201, 202, 203])
    write_validated(pd.concat([rows, variants], ignore_index=True))  # case variants of rows 1-3 stay together

    produced = split.run(SplitConfig(val_fraction=0.1, test_fraction=0.1, seed=7), model_cfg=TOKEN)

    frames = {name: pd.read_parquet(f"data/splits/{name}.parquet") for name in ("train", "val", "test")}
    assert sum(len(frame) for frame in frames.values()) == 203
    keys = {name: set(frame["text"].map(text_key)) for name, frame in frames.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    for name, share in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
        counts = mentions(frames[name])
        assert list(counts) == TYPES, name
        assert produced.metrics["label_counts"][name] == counts
        without = sum(not entity_types(json.loads(cell)) for cell in frames[name]["label"])
        assert abs(without - share * 50) <= 2, (name, without)  # 50 of the 200 sentences hold no entity
        assert abs(len(frames[name]) - share * 203) <= 3, name
    assert produced.metrics["classes"] == 3
    summary = Path("reports/split/summary.md").read_text()
    assert "## Mentions per entity type: 3 entity types" in summary
    assert "| entity type | train | val | test |" in summary
    person = {name: counts["person"] for name, counts in produced.metrics["label_counts"].items()}
    assert f"| person | {person['train']} | {person['val']} | {person['test']} |" in summary


def test_an_entity_type_too_rare_to_split_is_one_line(in_tmp_dir, capsys):
    items = sentences(120)
    # 'group' is in 8 sentences only (rows 1, 5, ..., 29): the later group sentences lose their entity
    items = [(tokens, ["O"] * len(tags)) if "B-group" in tags and i > 30 else (tokens, tags)
             for i, (tokens, tags) in enumerate(items)]
    write_validated(validated_frame(items))
    Path("params.yaml").write_text("model: {task: token-classification}\nregistry: {enabled: false}\n")
    assert split.main([]) == 1
    assert capsys.readouterr().err == (
        "split: error: entity type 'group' has 8 distinct texts; split needs at least 10 per entity type with "
        "val_fraction=0.1, test_fraction=0.1 (one in each held-out split, 2 in train)\n"
    )
    assert not Path("data/splits").exists()


def train_split(count: int = 60) -> pd.DataFrame:
    frame = validated_frame(sentences(count))
    Path("data/splits").mkdir(parents=True, exist_ok=True)
    frame.to_parquet("data/splits/train.parquet", index=False)
    return frame


def entities(text: str, cell: str) -> list[tuple[str, tuple[str, ...]]]:
    tokens = text.split(" ")
    return [(kind, tuple(tokens[start:end])) for start, end, kind in entity_spans(json.loads(cell))]


def outside_words(text: str, cell: str) -> list[str]:
    return [token for token, tag in zip(text.split(" "), json.loads(cell), strict=True) if tag == "O"]


def check_rows_are_aligned(out: pd.DataFrame, original: pd.DataFrame) -> None:
    """Every row: a tag per token, IOB2, its original's entity types in order, and provenance pointing at it."""
    assert out["method"].iloc[:len(original)].eq("original").all()
    pd.testing.assert_frame_equal(out.iloc[:len(original)][["text", "label", "source_row"]], original)
    for row in out.itertuples():
        tags = json.loads(row.label)
        assert len(row.text.split(" ")) == len(tags) and not ill_formed(tags), row
        before = original.iloc[row.origin]
        assert [kind for kind, _ in entities(row.text, row.label)] == [
            kind for kind, _ in entities(before["text"], before["label"])], row
        assert row.source_row == before["source_row"]


def test_noise_touches_only_the_words_outside_entities(in_tmp_dir):
    original = train_split()
    cfg = AugmentConfig(variants_per_row=2, char_noise=ON, word_dropout=ON, word_swap=ON, mention_replacement=OFF,
                        balance=BalanceConfig(enabled=False))
    produced = augment.run(cfg, model_cfg=TOKEN)

    out = pd.read_parquet("data/augmented/train.parquet")
    check_rows_are_aligned(out, original)
    added = out[out["method"] != "original"]
    assert len(added) > len(original) and set(added["method"]) <= {
        "+".join(methods) for methods in (["word_dropout", "word_swap", "char_noise"], ["word_dropout", "word_swap"],
                                          ["word_dropout", "char_noise"], ["word_swap", "char_noise"],
                                          ["word_dropout"], ["word_swap"], ["char_noise"])}
    for row in added.itertuples():
        before = original.iloc[row.origin]
        assert entities(row.text, row.label) == entities(before["text"], before["label"]), row  # words and all
        assert outside_words(row.text, row.label) != outside_words(before["text"], before["label"])
    assert produced.metrics["per_method"]["mention_replacement"] == 0
    assert produced.metrics["class_counts_before"] == mentions(original)


def test_mention_replacement_swaps_entities_for_others_of_their_type(in_tmp_dir):
    original = train_split()
    seen = {kind_words for text, cell in zip(original["text"], original["label"], strict=True)
            for kind_words in entities(text, cell)}
    cfg = AugmentConfig(variants_per_row=1, char_noise=OFF, word_dropout=OFF, word_swap=OFF,
                        mention_replacement=NoiseConfig(probability=1.0, rate=1.0),
                        balance=BalanceConfig(enabled=False))
    produced = augment.run(cfg, model_cfg=TOKEN)

    out = pd.read_parquet("data/augmented/train.parquet")
    check_rows_are_aligned(out, original)
    added = out[out["method"] != "original"]
    assert set(added["method"]) == {"mention_replacement"}
    assert len(added) == 45  # every sentence with an entity (15 of the 60 hold none)
    for row in added.itertuples():
        before = original.iloc[row.origin]
        old, new = entities(before["text"], before["label"]), entities(row.text, row.label)
        assert all(entity in seen for entity in new), row  # an entity of the train split, of the same type
        assert all(a != b for a, b in zip(old, new, strict=True)), row  # rate 1: every entity replaced
        assert outside_words(row.text, row.label) == outside_words(before["text"], before["label"])
    assert produced.metrics["per_method"]["mention_replacement"] == 45
    assert produced.metrics["class_counts_after"] == {kind: 2 * count for kind, count in mentions(original).items()}


def test_balancing_tops_up_the_rarest_entity_type_of_each_sentence(in_tmp_dir):
    original = train_split()
    produced = augment.run(AugmentConfig(variants_per_row=0, balance=BalanceConfig(target=25)), model_cfg=TOKEN)
    out = pd.read_parquet("data/augmented/train.parquet")
    check_rows_are_aligned(out, original)
    balance = out[out["method"].str.startswith("balance:")]
    assert all(entity_types(json.loads(cell)) for cell in balance["label"]), "a sentence without an entity is never "\
        "balanced"
    # A sentence counts for its rarest type by sentences: person is in 30 sentences, location and group in 15, so
    # person-and-place sentences count for location; each type's 15 sentences are topped up to 25.
    sentences_of = {"person": 30, "location": 15, "group": 15}
    rarest = [min(kinds, key=lambda kind: (sentences_of[kind], kind))
              for kinds in out["label"].map(lambda cell: entity_types(json.loads(cell))) if kinds]
    assert pd.Series(rarest).value_counts().to_dict() == {"group": 25, "location": 25, "person": 25}
    assert len(balance) == 30 and produced.metrics["balance_target"] == 25
    assert produced.metrics["balance_shortfall"] == {}


def test_augment_disabled_passes_the_sentences_through(in_tmp_dir):
    original = train_split()
    augment.run(AugmentConfig(enabled=False), model_cfg=TOKEN)
    out = pd.read_parquet("data/augmented/train.parquet")
    assert set(out["method"]) == {"original"} and out["label"].tolist() == original["label"].tolist()
