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
- Every kind, docs/s per core (CPU seconds, one thread: torch and ONNX Runtime set to 1 thread), on
  label-pure ~3 KB documents (human texts packed with human texts, machine with machine, alternating; a document
  mixing both would sit in the cascade's uncertain band more often than real pages): ``mgt-fasttext-v1``,
  ``mgt-minilm-v1`` with the torch fp32 encoder and with the ONNX Runtime int8 encoder (on CPU the ensemble
  and the cascade below share that int8 encoder: same loaded member), ``mgt-ensemble-v1`` and ``mgt-cascade-v1`` (its band as fitted, the share of documents it escalated printed).
  Then the cascade's cost curve: for each band of its card's ``band_curve``, the share of these documents it
  escalates and docs/s per core = 1 / (fastText cost + share x ensemble cost per escalated document), from the
  measured per-document costs. With ``--device cuda`` the transformer kinds run on the GPU (wall clock).

Usage: python benchmarks/mgt_speed.py [--docs 5000] [--tx-docs 256] [--kind-docs 128] [--device auto|cpu|cuda]
[--batch 64] [--skip-peers]
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


def make_pure_docs(n: int, data: Path) -> tuple[list[str], list[bool]]:
    """``n`` label-pure documents of about ``DOC_BYTES`` bytes (alternating human, machine) and their labels."""
    from curate.score.labelled import read_labelled, split_rows

    rows = [r for r in split_rows(read_labelled(data))[1] if len(r["text"].split()) >= 30]
    human = pack_documents([r["text"].strip() for r in rows if r["label"] == "human"], (n + 1) // 2, DOC_BYTES)
    machine = pack_documents([r["text"].strip() for r in rows if r["label"] == "machine"], n // 2, DOC_BYTES)
    docs = [d for pair in zip(human, machine, strict=False) for d in pair] + human[len(machine) :]
    return docs[:n], [i % 2 == 1 for i in range(min(n, len(docs)))]


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


def bench_kinds(docs: list[str], device: str) -> dict[str, object]:
    """docs/s per core of every kind on ``docs`` (CPU time, one thread) or, on CUDA, docs/s (wall clock)."""
    import numpy as np
    import torch

    from curate.score.cascade_model import CascadeModel
    from curate.score.encoder import build_encoder, resolve_device
    from curate.score.minilm_model import MINILM_PARAMS, MiniLMModel
    from curate.score.registry import load_model
    from curate.score.text import normalise

    device = resolve_device(device)
    torch.set_num_threads(1)
    # one run each for the transformer kinds (minutes at a few docs/s); fastText keeps the median of three
    rate = (
        (lambda fn, n: cpu_rate(fn, n, 1))
        if device == "cpu"
        else (lambda fn, n: wall_rate(fn, n, torch.cuda.synchronize))
    )
    out: dict[str, object] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu, 1 thread"}
    langs = ["en"] * len(docs)
    fasttext = load_model("mgt-fasttext-v1")
    out["mgt-fasttext-v1"] = cpu_rate(lambda: fasttext.score_many(docs, langs), len(docs))
    minilm = load_model("mgt-minilm-v1", device)
    if device == "cpu":
        params = minilm.card.get("minilm_params", MINILM_PARAMS)
        encoder = build_encoder("cpu", params["layers"], int(params["max_tokens"]), "torch")
        torch_minilm = MiniLMModel("mgt-minilm-v1", minilm.card, encoder, minilm.head)  # type: ignore[attr-defined]
        torch_minilm.score_many(docs[:4], langs[:4])  # warm-up
        out["mgt-minilm-v1 torch fp32"] = rate(lambda: torch_minilm.score_many(docs, langs), len(docs))
    if device == "cpu":  # the loaded models run torch; the int8 encoder is swapped in for the kinds below
        int8 = build_encoder("cpu", params["layers"], int(params["max_tokens"]), "onnx-int8")
        minilm.encoder = int8  # type: ignore[attr-defined]
    key = "mgt-minilm-v1 onnx int8" if device == "cpu" else "mgt-minilm-v1 torch bf16"
    minilm.score_many(docs[:4], langs[:4])
    out[key] = rate(lambda: minilm.score_many(docs, langs), len(docs))
    ensemble = load_model("mgt-ensemble-v1", device)
    ensemble.score_many(docs[:4], langs[:4])
    out["mgt-ensemble-v1"] = rate(lambda: ensemble.score_many(docs, langs), len(docs))
    cascade = load_model("mgt-cascade-v1", device)
    assert isinstance(cascade, CascadeModel)
    out["mgt-cascade-v1"] = rate(lambda: cascade.score_many(docs, langs), len(docs))
    words = [normalise(d) for d in docs]
    cheap = cascade.cheap_probs(words)
    out["mgt-cascade-v1 escalated"] = float(cascade.escalates(cheap).mean())
    # the cost curve: fastText on every document, the expensive stage on the escalated share
    per_doc_cheap = 1 / float(out["mgt-fasttext-v1"])  # type: ignore[arg-type]
    start = time.process_time() if device == "cpu" else time.perf_counter()
    cascade.expensive_probs(words, cheap)
    per_doc_exp = ((time.process_time() if device == "cpu" else time.perf_counter()) - start) / len(docs)
    curve = []
    for point in cascade.card.get("band_curve", []):
        lo, hi = point["band"] or (2.0, 2.0)
        share = float(np.mean((cheap >= lo) & (cheap <= hi)))
        curve.append({**point, "escalated_3kb": share, "docs_per_s": 1 / (per_doc_cheap + share * per_doc_exp)})
    out["cascade_curve"] = curve
    out["expensive_docs_per_s"] = 1 / per_doc_exp
    return out


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
    ap.add_argument("--kind-docs", type=int, default=128, help="label-pure 3 KB documents for the per-kind table")
    ap.add_argument("--skip-peers", action="store_true", help="only the per-kind table and the cascade curve")
    args = ap.parse_args()
    if args.skip_peers:
        kinds(args)
        return

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
    result["kinds"] = kinds(args)
    print(json.dumps(result), file=sys.stderr)


def kinds(args: argparse.Namespace) -> dict[str, object]:
    """Print the per-kind table and the cascade's cost curve; return them."""
    docs, _ = make_pure_docs(args.kind_docs, args.data)
    k = bench_kinds(docs, args.device)
    unit = "docs/s per core, CPU time" if k["device"] == "cpu, 1 thread" else "docs/s, wall clock"
    print(f"every kind on {len(docs)} label-pure docs of ~{DOC_BYTES} bytes, {k['device']} ({unit}):")
    for name, v in k.items():
        if isinstance(v, float) and name != "expensive_docs_per_s" and not name.endswith("escalated"):
            print(f"  {name:<32} {v:10.1f}")
    print(f"  cascade escalated {k['mgt-cascade-v1 escalated']:.1%} of these documents")
    print("cascade cost curve (budget: share of validation texts; escalated: of these documents):")
    print(f"  {'budget':>6} {'band':>17} {'esc. val':>8} {'esc. 3KB':>8} {'AUROC':>6} {'TPR@1%':>6} {'docs/s':>8}")
    for p in k["cascade_curve"]:  # type: ignore[attr-defined]
        band = "none" if p["band"] is None else f"[{p['band'][0]:.3f}, {p['band'][1]:.3f}]"
        h = p["heldout_half"]
        print(
            f"  {p['budget']:>6} {band:>17} {p['escalated_heldout_half']:>8.1%} {p['escalated_3kb']:>8.1%} "
            f"{h['auroc']:>6} {h['tpr_at_1pct_fpr']:>6} {p['docs_per_s']:>8.0f}"
        )
    print(json.dumps({"kinds": k}), file=sys.stderr)
    return k


if __name__ == "__main__":
    main()
