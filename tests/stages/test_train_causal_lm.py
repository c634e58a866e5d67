"""model.task causal-lm: chat JSONL, loss on response tokens only, LoRA on attention, packing, perplexity.

The model is a tiny Llama built from a config, with a byte-level BPE tokenizer trained here (no download).
"""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stages.train import run
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.tasks import causal_lm_data as causal_lm
from tuneforge.tasks.causal_lm_data import (
    DEFAULT_CHAT_TEMPLATE,
    IGNORE_INDEX,
    encode_conversation,
    pack,
    read_conversations,
)

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [(f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.") for a in range(7) for b in range(7)]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] }}{% if m['role'] == 'assistant' %}"
    "{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-llama")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = [f"{q} {r}" for q, r in PAIRS] + ["### Instruction:\n### Response:\n<|user|><|assistant|>"]
    backend.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def tokenizer(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def learned_text(tokenizer, example) -> str:
    pairs = zip(example["input_ids"], example["labels"], strict=True)
    return tokenizer.decode([token for token, label in pairs if label != IGNORE_INDEX])


def test_default_template_learns_only_the_response(tokenizer):
    assert causal_lm.ensure_chat_template(tokenizer) == "default"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 plus 3?"},
                {"role": "assistant", "content": "2 plus 3 is 5."}]
    example = encode_conversation(messages, tokenizer, max_length=128)
    assert tokenizer.decode(example["input_ids"]) == (
        "<s>Be brief.\n\n### Instruction:\nWhat is 2 plus 3?\n\n### Response:\n2 plus 3 is 5.</s>"
    )
    assert learned_text(tokenizer, example) == "2 plus 3 is 5.</s>"
    assert example["labels"][0] == IGNORE_INDEX and example["labels"][-1] == tokenizer.eos_token_id


def test_the_tokenizer_chat_template_is_used_and_every_assistant_turn_is_learned(tokenizer):
    tokenizer.chat_template = CHAT_TEMPLATE
    assert causal_lm.ensure_chat_template(tokenizer) == "tokenizer"
    messages = [{"role": "user", "content": "What is 1 plus 1?"}, {"role": "assistant", "content": "2."},
                {"role": "user", "content": "And 2 plus 2?"}, {"role": "assistant", "content": "4."}]
    example = encode_conversation(messages, tokenizer, max_length=128)
    assert tokenizer.decode(example["input_ids"]).startswith("<|user|>\nWhat is 1 plus 1?\n<|assistant|>\n2.</s>")
    assert learned_text(tokenizer, example) == "2.</s>\n4.</s>\n"


def test_truncation_that_leaves_no_response_skips_the_example(tokenizer):
    causal_lm.ensure_chat_template(tokenizer)
    messages = [{"role": "user", "content": "What is 1 plus 1? " * 20}, {"role": "assistant", "content": "2."}]
    assert encode_conversation(messages, tokenizer, max_length=16) is None
    kept, skipped = causal_lm.encode_all([messages, messages[:1] + [messages[1]]], tokenizer, 16)
    assert (kept, skipped) == ([], 2)


def test_packing_fills_blocks_and_keeps_the_labels():
    examples = [{"input_ids": [1, 2, 3], "attention_mask": [1] * 3, "labels": [IGNORE_INDEX, 2, 3]}] * 3
    blocks = pack(examples, block_size=4)
    assert [block["input_ids"] for block in blocks] == [[1, 2, 3, 1], [2, 3, 1, 2], [3]]
    assert blocks[0]["labels"] == [IGNORE_INDEX, 2, 3, IGNORE_INDEX]
    assert all(block["attention_mask"] == [1] * len(block["input_ids"]) for block in blocks)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("{not json", "line 2: not valid JSON"),
        ('{"prompt": "x"}', 'line 2: expected {"instruction", "response"} or {"messages": [...]}'),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "line 2: has no assistant message"),
        ('{"messages": [{"role": "bot", "content": "hi"}]}', "line 2: each message needs a role"),
    ],
)
def test_malformed_jsonl_is_named_by_line(tmp_path, line, expected):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"instruction": "a", "response": "b"}) + "\n" + line + "\n")
    with pytest.raises(StageError) as caught:
        read_conversations(path)
    assert expected in caught.value.message


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_lora_fine_tuning_of_a_tiny_llama_with_packing(tmp_path, tiny_llama):
    train_file = write_jsonl(tmp_path / "train.jsonl", [{"instruction": q, "response": r} for q, r in PAIRS[:40]])
    val_file = write_jsonl(tmp_path / "val.jsonl", [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": r}]} for q, r in PAIRS[40:]
    ])
    cfg = TrainConfig.model_validate(dict(
        method="lora", metric="perplexity", max_steps=12, eval_steps=4, batch_size=4,
        learning_rate=1e-2, warmup_ratio=0.0, early_stopping_patience=None,
        peft={"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": None},
        causal_lm={"train_file": str(train_file), "val_file": str(val_file), "packing": True},
    ))
    workspace = Workspace(tmp_path)
    out = workspace.teacher
    run(ModelConfig(base=str(tiny_llama), task="causal-lm", max_seq_length=64), cfg, workspace=workspace)

    adapter = json.loads((out / "adapter/adapter_config.json").read_text())
    assert adapter["task_type"] == "CAUSAL_LM" and set(adapter["target_modules"]) <= {"q_proj", "k_proj", "v_proj",
                                                                                      "o_proj"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["chat_template"] == "default" and meta["skipped_examples"] == {"train": 0, "val": 0}
    history = meta["history"]
    assert [row["step"] for row in history] == [4, 8, 12]
    assert history[-1]["val_perplexity"] < history[0]["val_perplexity"]
    best = min(history, key=lambda row: row["val_loss"])
    assert meta["best"]["step"] == best["step"]
    assert meta["best"]["value"] == pytest.approx(math.exp(best["val_loss"])) == best["val_perplexity"]
    assert json.loads(workspace.metrics("train").read_text())["best_perplexity"] == meta["best"]["value"]

    # A plain causal LM directory; the tokenizer carries the template the model was trained with.
    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 1 plus 2?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
