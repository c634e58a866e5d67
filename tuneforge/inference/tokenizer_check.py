"""The one check every tokenizer loader makes: does a model directory really hold a tokenizer?

transformers 5 does not fail on a directory without tokenizer files (or with only tokenizer_config.json):
it builds an empty tokenizer of the config's type that knows only its special tokens, so every word
becomes the unknown token, training "works" on [CLS] [UNK] [UNK] ... and a useless model is registered.
Every loader (the base model in train and tune, a model directory in evaluate, distill, export and monitor,
the shipped tokenizer.json in predict) calls `require_tokenizer`: before loading, one of the files that
carry a vocabulary must be there; after loading, the vocabulary must hold more than the special tokens.
No torch or transformers here: tuneforge.inference.onnx_predictor (onnxruntime + tokenizers only) uses it too.
"""

from pathlib import Path

from tuneforge.base.errors import StageError

# Files that carry a vocabulary (tokenizer_config.json and special_tokens_map.json do not).
VOCABULARY_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
)


def require_tokenizer(
    directory: Path, *, where: str | None = None, files: tuple[str, ...] = VOCABULARY_FILES, tokenizer=None
) -> None:
    """One StageError line unless `directory` holds one of `files` and, when the loaded `tokenizer` is given
    (transformers or tokenizers), it has a vocabulary beyond its special tokens.

    `where` prefixes the line (`model.base: NAME`); by default the line starts with the directory."""
    directory = Path(directory)
    subject = f"{where}: {directory}" if where else str(directory)
    if not any((directory / name).is_file() for name in files):
        wanted = f"no {files[0]}" if len(files) == 1 else f"none of {', '.join(files)}"
        raise StageError(
            f"{subject}: no usable tokenizer ({wanted}); without its tokenizer files every word would "
            "read as the unknown token"
        )
    if tokenizer is None:
        return
    size, special = vocabulary_sizes(tokenizer)
    if size <= special:
        raise StageError(
            f"{subject}: no usable tokenizer: it knows only its {special} special tokens, no vocabulary "
            "(every word would read as the unknown token); save the model's tokenizer there again"
        )


def vocabulary_sizes(tokenizer) -> tuple[int, int]:
    """(tokens including added ones, special tokens) of a transformers or a plain `tokenizers` tokenizer."""
    if hasattr(tokenizer, "all_special_ids"):  # transformers
        return len(tokenizer), len(set(tokenizer.all_special_ids))
    added = tokenizer.get_added_tokens_decoder().values()  # tokenizers.Tokenizer
    return tokenizer.get_vocab_size(with_added_tokens=True), sum(1 for token in added if token.special)
