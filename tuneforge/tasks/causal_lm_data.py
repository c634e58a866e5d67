"""Causal language model data for the train stage (model.task: causal-lm).

Input: JSONL files (train.causal_lm.train_file / val_file), one conversation per line, either
    {"instruction": "...", "input": "... (optional)", "response": "...", "system": "... (optional)"}
or  {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}.

Rendering: the tokenizer's chat template when it has one; else DEFAULT_CHAT_TEMPLATE (below), which
is then saved with the tokenizer so inference formats prompts the same way:

    <bos>[system]\n\n### Instruction:\n{user}\n\n### Response:\n{assistant}<eos>

Loss only on response tokens: the conversation is rendered turn by turn, and only the text each
assistant turn adds after its generation prompt is labelled; everything else is -100. Sequences
longer than max_seq_length are truncated; a conversation left with no response token is skipped.
Packing (optional) concatenates the examples and cuts them into max_seq_length blocks, so no compute
goes to padding (examples in one block can then attend to each other, the usual trade-off).
"""

import json
from pathlib import Path

from tuneforge.base.errors import StageError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
# Newlines are jinja string literals: transformers renders templates with trim_blocks, which would eat a
# newline written right after a block tag.
DEFAULT_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if not loop.first %}{{ '\\n\\n' }}{% endif %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n\\n### Response:\\n' }}{% endif %}"
)


def read_conversations(path: Path) -> list[list[dict]]:
    """Conversations as lists of {role, content}; a malformed line is named by its line number."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: not found (train.causal_lm.train_file / val_file)")
    conversations = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise StageError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise StageError(f"{path}: line {number}: not valid JSON") from None
        conversations.append(_conversation(row, f"{path}: line {number}"))
    if not conversations:
        raise StageError(f"{path}: has no conversations")
    return conversations


def _conversation(row, where: str) -> list[dict]:
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        messages = row["messages"]
        for message in messages:
            if not (isinstance(message, dict) and message.get("role") in ROLES
                    and isinstance(message.get("content"), str)):
                raise StageError(f"{where}: each message needs a role ({', '.join(ROLES)}) and a string content")
    elif isinstance(row, dict) and isinstance(row.get("instruction"), str) and isinstance(row.get("response"), str):
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        messages = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + [
            {"role": "user", "content": user},
            {"role": "assistant", "content": row["response"]},
        ]
    else:
        raise StageError(f"{where}: expected {{\"instruction\", \"response\"}} or {{\"messages\": [...]}}")
    if not any(message["role"] == "assistant" for message in messages):
        raise StageError(f"{where}: has no assistant message to learn from")
    if messages[0]["role"] == "assistant":
        raise StageError(f"{where}: starts with an assistant message (start with system or user)")
    return messages


def ensure_chat_template(tokenizer) -> str:
    """'tokenizer' when the tokenizer brings its own template, else 'default' (DEFAULT_CHAT_TEMPLATE is set)."""
    if getattr(tokenizer, "chat_template", None):
        return "tokenizer"
    if tokenizer.eos_token is None:
        raise StageError("model.base: the tokenizer has no chat template and no eos token to end a response with")
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return "default"


def encode_conversation(messages: list[dict], tokenizer, max_length: int) -> dict | None:
    """input_ids and labels (-100 except on assistant text), truncated; None if no response token is left."""
    segments: list[tuple[str, bool]] = []  # (text, is learned)
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt = _render(tokenizer, messages[:index], generation_prompt=True)
            _append(segments, rendered, prompt, False)
            rendered = prompt
        upto = _render(tokenizer, messages[: index + 1], generation_prompt=False)
        _append(segments, rendered, upto, message["role"] == "assistant")
        rendered = upto
    input_ids, labels = [], []
    for text, learned in segments:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if learned else [IGNORE_INDEX] * len(ids)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def _render(tokenizer, messages: list[dict], *, generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _append(segments: list, before: str, after: str, learned: bool) -> None:
    if not after.startswith(before):
        raise StageError(
            "model.base: its chat template does not render a conversation as a growing prefix, so response "
            "tokens cannot be told apart; remove chat_template from its tokenizer_config.json to use the default"
        )
    if after[len(before):]:
        segments.append((after[len(before):], learned))


def encode_all(conversations: list[list[dict]], tokenizer, max_length: int) -> tuple[list[dict], int]:
    """(encoded examples, how many were skipped for having no response token within max_length)."""
    encoded = [encode_conversation(messages, tokenizer, max_length) for messages in conversations]
    kept = [example for example in encoded if example is not None]
    return kept, len(encoded) - len(kept)


def pack(examples: list[dict], block_size: int) -> list[dict]:
    """Concatenate the examples and cut them into blocks of block_size tokens (the last one may be shorter)."""
    input_ids = [token for example in examples for token in example["input_ids"]]
    labels = [label for example in examples for label in example["labels"]]
    blocks = []
    for start in range(0, len(input_ids), block_size):
        block_labels = labels[start : start + block_size]
        if all(label == IGNORE_INDEX for label in block_labels):
            continue
        block_ids = input_ids[start : start + block_size]
        blocks.append({"input_ids": block_ids, "attention_mask": [1] * len(block_ids), "labels": block_labels})
    return blocks
