"""MGT scoring speed: curate's classifiers against the peer way of running the same model, same texts, one run.

Texts: real human and model-generated texts of the grouped validation split of ``shared/data/mgt``, joined and
cut at a word boundary to ~3 KB each (the issue's size for the fastText target).

- fastText, docs/s per core (CPU seconds of this process, single-threaded predict; median of 3 runs): curate's
  ``mgt-fasttext-v1`` scoring (normalise, 128-word windows, calibrate) in the pipeline's batches of
  ``score.batch_docs`` documents with the language given, as the pipeline's extract step gives it (and, printed
  below it, with the language left to the scorer to detect), against datatrove's
  ``FastTextClassifierFilter`` running the same ``model.bin`` over the raw document (annotate only).
- Transformer, docs/s (wall clock) on ``--device``: curate's MiniLM encoder pass at 512 tokens (truncated,
  sorted-by-length batches, bfloat16 on CUDA) against sentence-transformers' ``encode`` of the same model at
  ``max_seq_length`` 512 and the same batch size; then curate's end-to-end ``mgt-minilm-v1`` scoring of the
  3 KB documents (all their 128-word windows). On CPU the thread count is printed with the numbers.

Usage: python benchmarks/mgt_speed.py [--docs 5000] [--tx-docs 256] [--device auto|cpu|cuda] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from corpus import pack_documents

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "mgt" / "train.jsonl.gz"
DOC_BYTES = 3000


def make_docs(n: int, data: Path) -> list[str]:
    """``n`` documents of about ``DOC_BYTES`` bytes from the validation texts (cycled when there are too few)."""
    from curate.score.labelled import read_labelled, split_rows

    texts = [r["text"].strip() for r in split_rows(read_labelled(data))[1] if len(r["text"].split()) >= 30]
    return pack_documents(texts, n, DOC_BYTES)


def cpu_rate(fn: object, n: int, repeat: int = 3) -> float:
    """Documents per CPU second of ``fn()`` (which handles ``n`` documents), the median of ``repeat`` runs."""
    rates = []
    for _ in range(repeat):
        start = time.process_time()
        fn()  # type: ignore[operator]
        rates.append(n / max(time.process_time() - start, 1e-9))
    return sorted(rates)[len(rates) // 2]


def wall_rate(fn: object, n: int, sync: object = None) -> float:
    """Documents per wall-clock second of ``fn()``."""
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    if sync is not None:
        sync()  # type: ignore[operator]
    return n / max(time.perf_counter() - start, 1e-9)


def bench_fasttext(docs: list[str]) -> dict[str, float]:
    """curate vs datatrove, docs/s per core."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import FastTextClassifierFilter

    from curate.recipe import ScoreConfig
    from curate.score.fasttext_model import MODEL_FILE
    from curate.score.model import model_dir
    from curate.score.registry import load_model

    model = load_model("mgt-fasttext-v1")
    model.score_many(docs[:10])
    batch = ScoreConfig().batch_docs  # as the pipeline's ScoreStep calls it
    chunks = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    # the pipeline passes the language its extract step detected; a caller that knows none has it detected here
    curate = cpu_rate(lambda: [model.score_many(c, ["en"] * len(c)) for c in chunks], len(docs))
    detected = cpu_rate(lambda: [model.score_many(c) for c in chunks], len(docs))
    # keep_labels with a 0 floor keeps everything (annotate only); with neither keep nor remove labels,
    # datatrove 0.10.1 fails on `None + list` when it loads the model
    peer = FastTextClassifierFilter(
        str(model_dir("mgt-fasttext-v1") / MODEL_FILE), keep_labels=("machine", 0.0), filter_mode="DOCUMENT"
    )
    dt_docs = [Document(text=d, id=str(i)) for i, d in enumerate(docs)]
    peer.filter(dt_docs[0])
    datatrove = cpu_rate(lambda: [peer.filter(d) for d in dt_docs], len(docs))
    return {"curate": curate, "curate_detecting_language": detected, "datatrove": datatrove}


def bench_transformer(docs: list[str], device: str, batch: int) -> dict[str, object]:
    """curate's encoder vs sentence-transformers at 512 tokens, and curate's end-to-end scoring, docs/s."""
    import torch

    from curate.score.encoder import MiniLMEncoder, encoder_path
    from curate.score.registry import load_model

    enc = MiniLMEncoder(device, layers=(2, 4, 6), max_tokens=512, batch_size=batch)
    sync = torch.cuda.synchronize if enc.device == "cuda" else None
    tokens = enc.token_counts(docs)
    enc.features(docs[:batch])
    curate_512 = wall_rate(lambda: enc.features(docs), len(docs), sync)

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(encoder_path()), device=enc.device)
    st.max_seq_length = 512
    if enc.device == "cuda":
        st = st.to(torch.bfloat16)
    st.encode(docs[:batch], batch_size=batch)
    st_512 = wall_rate(lambda: st.encode(docs, batch_size=batch), len(docs), sync)

    model = load_model("mgt-minilm-v1", enc.device)
    model.score_many(docs[:batch])
    scoring = wall_rate(lambda: model.score_many(docs), len(docs), sync)
    return {
        "device": torch.cuda.get_device_name() if enc.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "mean_tokens": sum(tokens) / len(tokens),
        "curate_encoder_512": curate_512,
        "sentence_transformers_512": st_512,
        "curate_scoring_3kb": scoring,
    }


def main() -> None:
    """Run both benchmarks and print a table and a JSON line."""
    from curate.score.encoder import DEVICES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=5000, help="3 KB documents for the fastText comparison")
    ap.add_argument("--tx-docs", type=int, default=256, help="documents for the transformer comparison")
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--skip-transformer", action="store_true")
    args = ap.parse_args()

    docs = make_docs(max(args.docs, args.tx_docs), args.data)
    ft = bench_fasttext(docs[: args.docs])
    print(f"fastText on {args.docs} docs of ~{DOC_BYTES} bytes (docs/s per core, CPU time):")
    print(f"  curate mgt-fasttext-v1        {ft['curate']:10.0f}   (language given, as the pipeline does)")
    print(f"  ... detecting the language    {ft['curate_detecting_language']:10.0f}   (lid.176 per document)")
    print(f"  datatrove FastTextClassifier  {ft['datatrove']:10.0f}")
    print(f"  ratio curate / datatrove      {ft['curate'] / ft['datatrove']:10.2f}x")
    result: dict[str, object] = {"fasttext": ft}
    if not args.skip_transformer:
        tx = bench_transformer(docs[: args.tx_docs], args.device, args.batch)
        print(f"MiniLM on {args.tx_docs} docs, {tx['device']}, batch {args.batch} (docs/s, wall clock):")
        print(f"  mean tokens per doc (512 cap)            {tx['mean_tokens']:8.0f}")
        print(f"  curate encoder, 512 tokens               {tx['curate_encoder_512']:8.1f}")
        print(f"  sentence-transformers encode, 512 tokens {tx['sentence_transformers_512']:8.1f}")
        ratio = float(tx["curate_encoder_512"]) / float(tx["sentence_transformers_512"])  # type: ignore[arg-type]
        print(f"  ratio curate / sentence-transformers     {ratio:8.2f}x")
        print(f"  curate mgt-minilm-v1 scoring, 3 KB docs  {tx['curate_scoring_3kb']:8.1f}")
        result["transformer"] = tx
    print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
