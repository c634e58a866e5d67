"""train.num_processes: 2 runs the stage's training in two CPU processes (torchrun, DDP over gloo)."""

import json

import pytest
from transformers import AutoModelForSequenceClassification

from tests.helpers.training import run_train, tiny_train, write_classification_data
from tuneforge.training.fit import weights_digest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_two_processes_train_one_model_and_every_rank_ends_with_the_same_weights(tmp_path, tiny_bert):
    root = write_classification_data(tmp_path)
    # 12 val examples: an eval batch of 6 per process covers them exactly once (no padded duplicates).
    settings = dict(max_steps=6, eval_steps=3, dropout=0.0, eval_batch_size=6)
    run_train(root, tiny_bert, tiny_train(num_processes=2, batch_size=8, **settings))
    teacher = root / "models/teacher"
    meta = json.loads((teacher / "meta.json").read_text())

    ranks = meta["ranks"]
    assert [rank["rank"] for rank in ranks] == [0, 1]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"], "DDP kept both replicas identical"
    assert all(rank["peak_rss_mb"] > 100 for rank in ranks)
    assert meta["num_processes"] == 2 and meta["global_step"] == 6
    # Two processes of batch 8: each optimizer step saw 16 examples.
    assert meta["throughput"]["train_samples_per_second"] > 0
    assert [row["step"] for row in meta["history"]] == [3, 6]
    # Rank 0 wrote the model the ranks agreed on.
    saved = AutoModelForSequenceClassification.from_pretrained(teacher)
    assert weights_digest(saved) == ranks[0]["weights_sha256"]
    assert not (root / "models/.checkpoints/teacher").exists()

    # Each step's two batches of 8 are the 16 examples one process takes as one batch, in the same seeded
    # order: the same training, if the gradients are averaged (not summed) across the processes.
    run_train(root, tiny_bert, tiny_train(num_processes=1, batch_size=16, **settings))
    single = json.loads((teacher / "meta.json").read_text())
    for two, one in zip(meta["history"], single["history"], strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-5)
        assert two["val_loss"] == pytest.approx(one["val_loss"], abs=1e-5)
