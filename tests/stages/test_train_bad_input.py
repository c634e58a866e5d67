"""Bad input to the train stage: one clear line, a non-zero exit, no traceback, nothing written."""

import json

import pandas as pd
import pytest
import yaml

from stages.train import main
from tests.helpers.training import tiny_model, tiny_train, write_classification_data
from tuneforge.training.checkpoints import MARKER


@pytest.fixture
def project(in_tmp_dir):
    return write_classification_data(in_tmp_dir)


def run_main(project, capsys, base, model=None, **train) -> tuple[int, str]:
    params = {"model": tiny_model(base, **(model or {})).model_dump(), "train": {**tiny_train().model_dump(), **train}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    code = main(["--params", str(project / "params.yaml")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: error:")]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    written = [p for top in ("models", "reports") for p in (project / top).rglob("*") if p.is_file()]
    assert not [p for p in written if ".checkpoints" not in p.parts], "nothing written"
    return code, lines[0]


def test_base_model_neither_local_nor_cached(project, capsys):
    code, line = run_main(project, capsys, "someone/not-downloaded-model")
    assert code == 1
    assert "not in the Hugging Face cache" in line and "hf download someone/not-downloaded-model" in line
    assert "point model.base at a local model directory" in line


def test_base_model_directory_missing_or_not_a_model(project, capsys, tmp_path):
    assert "./no-such-model: no such directory" in run_main(project, capsys, "./no-such-model")[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "not a model directory (no config.json" in run_main(project, capsys, empty)[1]


def test_pickled_weights_are_refused(project, capsys, tiny_bert, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_bert / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    assert "no safetensors weights" in run_main(project, capsys, pickled)[1]


def test_custom_code_is_never_trusted(project, capsys, tmp_path):
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "my-model", "auto_map": {"AutoConfig": "x.Y"}}))
    (custom / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{}      ")  # a valid file without tensors
    assert "trust_remote_code is never enabled" in run_main(project, capsys, custom)[1]


def test_peft_target_modules_absent_lists_the_modules_that_exist(project, capsys, tiny_bert):
    code, line = run_main(
        project, capsys, tiny_bert, method="lora",
        peft={"peft_type": "LORA", "r": 4, "target_modules": ["q_proj", "v_proj"]},
    )
    assert code == 2
    assert "train.peft.target_modules: ['q_proj', 'v_proj'] matches no module" in line
    assert all(name in line for name in ("query", "key", "value", "dense"))


@pytest.mark.parametrize(
    "peft_block, expected",
    [
        ({"peft_type": "NOPE"}, "train.peft.peft_type: unknown peft method 'NOPE'"),
        ({"peft_type": "LORA", "rank": 4}, "train.peft: LoraConfig.__init__() got an unexpected keyword argument"),
        ({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4}, "cannot be merged into the model"),
    ],
    ids=["unknown-type", "unknown-key", "prompt-learning"],
)
def test_bad_peft_blocks(project, capsys, tiny_bert, peft_block, expected):
    code, line = run_main(project, capsys, tiny_bert, method="peft", peft=peft_block)
    assert code == 2 and expected in line


def test_label_sets_that_differ_between_splits(project, capsys, tiny_bert):
    val_path = project / "data/splits/val.parquet"
    val = pd.read_parquet(val_path)
    val[val["label"] != "class_2"].to_parquet(val_path, index=False)
    code, line = run_main(project, capsys, tiny_bert)
    assert code == 1
    assert "hold different label sets (only in train: class_2)" in line and "rerun the split stage" in line


def test_labels_outside_the_validated_label_set(project, capsys, tiny_bert):
    (project / "data/validated/labels.json").write_text(json.dumps({"labels": ["class_0", "class_1"]}))
    code, line = run_main(project, capsys, tiny_bert)
    assert "train.parquet: label(s) not in the label set: class_2" in line


def test_missing_inputs_name_the_stage_to_run(project, capsys, tiny_bert):
    (project / "data/augmented/train.parquet").unlink()
    assert "data/augmented/train.parquet: not found; run the augment stage first" in run_main(
        project, capsys, tiny_bert)[1]


def test_max_sequence_length_beyond_the_model_limit(project, capsys, tiny_bert):
    code, line = run_main(project, capsys, tiny_bert, model={"max_seq_length": 128})
    assert code == 2 and "model.max_seq_length: 128 exceeds the limit of" in line and "(64 tokens)" in line


def test_checkpoint_from_another_config_is_refused(project, capsys, tiny_bert):
    stale = project / "models/.checkpoints/teacher/checkpoint-5"
    stale.mkdir(parents=True)
    (stale / MARKER).write_text(json.dumps({"config_hash": "0" * 64, "step": 5}))
    code, line = run_main(project, capsys, tiny_bert)
    assert code == 1
    assert "checkpoint of a different config or input data" in line and "never resumed silently" in line
    assert "rm -rf models/.checkpoints/teacher" in line
    assert stale.is_dir(), "the user decides to delete it"


def test_spec_combinations_that_cannot_work(project, capsys, tiny_bert):
    assert "train.device: cuda, but no CUDA device" in run_main(project, capsys, tiny_bert, device="cuda")[1]
    assert "train.precision: fp16 needs a CUDA device" in run_main(
        project, capsys, tiny_bert, device="cpu", precision="fp16")[1]
    line = run_main(project, capsys, tiny_bert, model={"task": "causal-lm"}, metric="accuracy")[1]
    assert "train.metric: accuracy does not apply to model.task causal-lm" in line
    line = run_main(project, capsys, tiny_bert, model={"task": "causal-lm"}, metric="loss")[1]
    assert "train.causal_lm: model.task causal-lm needs train_file and val_file" in line
    assert "train.freeze_layers: 5 exceeds the model's 2 layers" in run_main(
        project, capsys, tiny_bert, freeze_layers=5)[1]


def test_running_under_an_external_launcher_is_refused(project, capsys, tiny_bert, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, line = run_main(project, capsys, tiny_bert)
    assert code == 2 and "it launches torchrun itself" in line


def test_params_mistakes_are_named_by_dotted_path(project, capsys, tiny_bert):
    code, line = run_main(project, capsys, tiny_bert, method="lora", peft={"peft_type": "IA3"})
    assert code == 2 and "train: method lora needs peft.peft_type LORA, got IA3 (use method: peft)" in line
