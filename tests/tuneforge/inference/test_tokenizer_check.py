"""A model directory without a real tokenizer is refused by every loader, with one line (issue #18).

transformers 5 builds an empty tokenizer (its 5 special tokens only) for a folder that has config.json and
weights but no tokenizer files, or only tokenizer_config.json: every word became [UNK], training reached a
macro-F1 of 0.01 and registered the model. train/tune (tuneforge.training.modeling), evaluate/distill/export/monitor
(tuneforge.inference.torch_predictor, tuneforge.training.student) and predict
(tuneforge.inference.onnx_predictor) all go through one check.
"""

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer
from tuneforge.base.errors import StageError
from tuneforge.inference import onnx_predictor as onnx_predict
from tuneforge.inference import torch_predictor as predict_torch
from tuneforge.inference.tokenizer_check import require_tokenizer
from tuneforge.training import modeling, student


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("tiny") / "model")


def copy_with(source: Path, target: Path, names: set[str]) -> Path:
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name in names:
            shutil.copy(path, target / path.name)
    return target


def one_line(caught) -> str:
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_base_model_without_tokenizer_files_is_refused(tiny_model, tmp_path):
    bare = copy_with(tiny_model, tmp_path / "bare", {"config.json", "model.safetensors"})
    assert modeling.resolve_base_model(str(bare)) == bare  # config and weights are fine
    with pytest.raises(StageError) as caught:
        modeling.base_tokenizer(bare, str(bare))
    assert one_line(caught).startswith(f"model.base: {bare}: no usable tokenizer (none of tokenizer.json, ")


def test_a_tokenizer_config_without_a_vocabulary_is_refused_after_loading(tiny_model, tmp_path):
    # tokenizer_config.json alone names the class; transformers then builds it empty, with special tokens only.
    only_config = copy_with(tiny_model, tmp_path / "config-only", {"config.json", "model.safetensors",
                                                                   "tokenizer_config.json"})
    (only_config / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(StageError) as caught:
        modeling.base_tokenizer(only_config, "acme/model")
    assert one_line(caught).startswith(
        f"model.base: acme/model: {only_config}: no usable tokenizer: it knows only its 5 special tokens"
    )
    with pytest.raises(StageError, match="no usable tokenizer: it knows only its 5 special tokens"):
        predict_torch.load_tokenizer(only_config)


def test_a_real_tokenizer_passes_every_loader(tiny_model):
    assert len(modeling.base_tokenizer(tiny_model, "tiny")) == 30522
    assert len(predict_torch.load_tokenizer(tiny_model)) == 30522
    assert modeling.base_tokenizer(tiny_model, "tiny").tokenize("my card was declined") == [
        "my", "card", "was", "declined",
    ]


def test_the_model_directory_loaders_refuse_it_too(tiny_model, tmp_path):
    bare = copy_with(tiny_model, tmp_path / "bare", {"config.json", "model.safetensors"})
    with pytest.raises(StageError, match=f"^{bare}: no usable tokenizer \\(none of tokenizer.json"):
        predict_torch.load_trained_classifier(bare, torch.device("cpu"), missing_hint="")
    with pytest.raises(StageError, match=f"^{bare}: no usable tokenizer \\(no tokenizer.json\\)"):
        student.load_student(bare)
    with pytest.raises(StageError, match=f"^{bare}: no usable tokenizer \\(no tokenizer.json\\)"):
        student.require_tokenizer_file(bare)


def test_a_shipped_tokenizer_json_with_special_tokens_only_is_refused(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    # What the old pipeline exported from a folder without tokenizer files: a valid tokenizer.json, 5 tokens.
    empty = AutoTokenizer.from_pretrained(copy_with(tiny_model, tmp_path / "bare", {"config.json"}))
    empty.save_pretrained(tmp_path / "onnx")
    assert (tmp_path / "onnx" / "tokenizer.json").is_file()
    with pytest.raises(StageError) as caught:
        onnx_predict.load_tokenizer(tmp_path / "onnx" / "tokenizer.json")
    assert one_line(caught).startswith(f"{tmp_path / 'onnx'}: no usable tokenizer: it knows only its 5 special")

    with pytest.raises(StageError, match=r"onnx-missing: no usable tokenizer \(no tokenizer.json\)"):
        onnx_predict.load_tokenizer(tmp_path / "onnx-missing" / "tokenizer.json")


def test_the_check_itself_names_where_and_which_files(tmp_path):
    with pytest.raises(StageError) as caught:
        require_tokenizer(tmp_path, where="model.base: x", files=("tokenizer.json",))
    assert one_line(caught) == (
        f"model.base: x: {tmp_path}: no usable tokenizer (no tokenizer.json); without its tokenizer files "
        "every word would read as the unknown token"
    )
    (tmp_path / "vocab.txt").write_text("a\n")
    require_tokenizer(tmp_path)  # a vocabulary file is there: the loader may go on
