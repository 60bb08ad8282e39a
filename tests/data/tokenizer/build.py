"""Train the tiny byte-level BPE tokenizer the mix tests use (``tokenizer.json``), deterministically.

Run from the repository root: ``python tests/data/tokenizer/build.py``. It reads the human-written texts of
``tests/data/mgt/subset.jsonl.gz`` (see that folder's SOURCE.md), trains a byte-level BPE of 1,000 ids with the
``tokenizers`` library (single-threaded, so the merges come out the same every time) and writes
``tokenizer.json`` beside this file.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBSET = HERE.parent / "mgt" / "subset.jsonl.gz"
VOCAB = 1000
SPECIALS = ["<|endoftext|>", "<s>"]


def main() -> None:
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    with gzip.open(SUBSET, "rt", encoding="utf-8") as fh:
        texts = [r["text"] for r in map(json.loads, fh) if r["label"] == "human"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(texts), trainer=trainer)
    tok.save(str(HERE / "tokenizer.json"), pretty=False)


if __name__ == "__main__":
    main()
