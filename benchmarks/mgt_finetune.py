"""Does fine-tuning the top layers of the MiniLM encoder pay on unseen generators and domains? (issue 15;
docs/mgt.md, "Fine-tuning the encoder's top layer").

Measures detectors fitted on the same rows, side by side: ``v1``, the recipe of ``mgt-minilm-v1`` (frozen
all-MiniLM-L6-v2, the means of its 7 hidden states per 128-word window, a logistic head, a document's score the
mean window logit), and ``finetuned``, the same features and head with the top ``k`` encoder layers fine-tuned
(``curate.score.finetune``: the head starts as v1's fitted on the fine-tune's rows; class-balanced loss; AdamW;
early stopping on a tenth of the training groups, never on the validation split or a held-out fold), and ``start``,
v1's recipe on the nine tenths the fine-tune fits on (its step 0, so its own effect is ``finetuned - start``). The frozen
bottom layers are run once over every window (the cache pass, kept in ``--cache``); each fold then fine-tunes
from that cache alone.

For each fold asked for (``--folds``, in that order; ``all`` runs ``curate.score.ood.fold_table`` itself), a fresh
fit without the held-out generator or domain, tested on it exactly as ``fold_table`` does (generator folds: its
validation texts against all validation humans; domain folds: its validation texts, the one-class ``essay``
against the web-human ``eval`` pages); and, unless ``--no-full``, a fit on the whole training split: validation
AUROC and TPR at 1% / 5% FPR (``curate.score.metrics``) and the AUROC of the real human web pages
(``tests/data/mgt/web-human.jsonl.gz``, ``eval`` split) against the validation machine texts, as in
``benchmarks/mgt_lexical.py``. Wall and CPU seconds of the cache pass and of every fit are recorded. Results are
written to ``--out`` after every fit (so an interrupted run keeps what it measured) and printed as one JSON
object at the end.

``--train-share`` keeps that share of the training groups (a fixed hash of the group; validation untouched) for
both detectors alike, to fit a 2-core time budget. Deterministic: fixed seeds, fixed data order,
``torch.use_deterministic_algorithms(True)``, ``--threads`` torch threads.

Usage: python benchmarks/mgt_finetune.py [--data ../shared/data/mgt/train.jsonl.gz]
[--web tests/data/mgt/web-human.jsonl.gz] [--k 1] [--epochs 1] [--max-steps 0] [--train-share 1.0]
[--folds domain:squad,domain:xsum,domain:writing,generator:gpt2-xl,generator:gpt-neox-20b,generator:gpt-3.5-turbo|all]
[--no-full] [--cache /tmp/mgt-finetune-cache] [--out mgt_finetune.json] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDS = (
    "domain:squad,domain:xsum,domain:writing,generator:gpt2-xl,generator:gpt-neox-20b,generator:gpt-3.5-turbo"
)
Scorer = Callable[[Sequence[Sequence[str]]], list[float]]


def doc_window_texts(words: Sequence[str]) -> list[str]:
    """The window texts ``mgt-minilm-v1`` scores for one normalised document (at most 8, evenly spread)."""
    from curate.score.minilm_model import MINILM_PARAMS
    from curate.score.model import spread
    from curate.score.text import windows

    return [" ".join(w) for w in spread(list(windows(words)), int(MINILM_PARAMS["max_windows"]))]


def keep_share(group: str, share: float) -> bool:
    """Whether a training group is in the ``share`` kept by ``--train-share`` (hash of the group)."""
    return int(hashlib.sha1(f"share:{group}".encode()).hexdigest(), 16) % 10_000 < round(share * 10_000)


def is_stop_group(group: str) -> bool:
    """Training groups held out for early stopping: a tenth, by a hash independent of the validation split."""
    return int(hashlib.sha1(f"stop:{group}".encode()).hexdigest(), 16) % 10 == 0


class Detectors:
    """Both detectors' fits over one window cache (module docstring)."""

    def __init__(self, encoder: Any, cache: Any, train: list[dict[str, Any]], config: Any, log: Any) -> None:
        from curate.score.labelled import prepare

        self.encoder, self.cache, self.config, self.log = encoder, cache, config, log
        labels, docs, kept = prepare(train)
        self.windows: dict[str, tuple[bool, np.ndarray]] = {}
        for y, words, i in zip(labels, docs, kept, strict=True):
            self.windows[str(train[i]["id"])] = (y, cache.rows_of(doc_window_texts(words)))

    def _table(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cache rows, window labels, owning document, document labels) of the scorable ``rows``."""
        cache_rows: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        owner: list[np.ndarray] = []
        doc_y: list[bool] = []
        for r in rows:
            hit = self.windows.get(str(r["id"]))
            if hit is None:
                continue
            y, w = hit
            cache_rows.append(w)
            ys.append(np.full(len(w), y))
            owner.append(np.full(len(w), len(doc_y)))
            doc_y.append(y)
        return np.concatenate(cache_rows), np.concatenate(ys), np.concatenate(owner), np.asarray(doc_y, dtype=bool)

    def _scorer(self, window_logits: Callable[[np.ndarray], np.ndarray]) -> Scorer:
        from scipy.special import expit

        from curate.score.minilm_model import aggregate

        def score(docs: Sequence[Sequence[str]]) -> list[float]:
            texts: list[str] = []
            owner: list[int] = []
            for d, words in enumerate(docs):
                w = doc_window_texts(words)
                texts += w
                owner += [d] * len(w)
            logits = window_logits(self.cache.rows_of(texts))
            return aggregate(expit(logits), np.asarray(owner, dtype=np.int64), len(docs), "mean_logit")

        return score

    def fit_v1(self, rows: list[dict[str, Any]]) -> Scorer:
        """``mgt-minilm-v1``'s recipe on ``rows``: the logistic head on every window's frozen features."""
        from curate.score.metrics import clipped_logit
        from curate.score.minilm_model import fit_head, head_probs

        cache_rows, y, _, _ = self._table(rows)
        head = fit_head(self.cache.pooled[cache_rows], y, self.config.l2)
        return self._scorer(lambda r: clipped_logit(head_probs(head, self.cache.pooled[r])))

    def fit_start(self, rows: list[dict[str, Any]]) -> Scorer:
        """``mgt-minilm-v1``'s recipe on the rows the fine-tune fits on (``rows`` less the early-stopping tenth):
        where the fine-tune starts, so its own effect is the difference from this."""
        return self.fit_v1([r for r in rows if not is_stop_group(str(r.get("group")))])

    def fit_finetuned(self, rows: list[dict[str, Any]]) -> tuple[dict[str, Scorer], dict[str, Any]]:
        """The fine-tuned detector on ``rows`` (a tenth of their groups early-stops it): scorers of its early-stopped
        state (``finetuned``) and of its last state (``finetuned_last``), and its training summary."""
        from curate.score.finetune import fine_tune

        fit = [r for r in rows if not is_stop_group(str(r.get("group")))]
        stop = [r for r in rows if is_stop_group(str(r.get("group")))]
        fit_rows, fit_y, _, _ = self._table(fit)
        stop_rows, _, stop_owner, stop_y = self._table(stop)
        model, summary = fine_tune(
            self.encoder,
            self.cache,
            fit_rows,
            fit_y,
            stop_rows=stop_rows,
            stop_owner=stop_owner,
            stop_labels=stop_y,
            config=self.config,
            log=self.log,
        )
        summary.update(fit_windows=len(fit_rows), stop_windows=len(stop_rows), stop_docs=len(stop_y))
        best, last = model.state(), model.final_state or model.state()

        def in_state(state: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
            def logits(r: np.ndarray) -> np.ndarray:
                model.restore(state)
                return model.window_logits(self.cache, r)

            return logits

        return {"finetuned": self._scorer(in_state(best)), "finetuned_last": self._scorer(in_state(last))}, summary


Fit = Callable[[list[dict[str, Any]]], dict[str, Scorer]]  # detectors fitted on the rows a fold keeps, by name


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """(``fn()``, its wall and CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}


def fold_cell(rows: list[dict[str, Any]], web: list[dict[str, Any]], fold: str, fit: Fit) -> dict[str, Any]:
    """One cell of ``curate.score.ood.fold_table`` (``kind:name``) per detector ``fit`` returns, computed as it
    does; only the test documents are scored (a document's score does not depend on the others)."""
    from curate.score.labelled import in_domain_test, in_generator_test, prepare, split_rows, web_split
    from curate.score.metrics import auroc_block

    kind, name = fold.split(":", 1)
    train, val = split_rows(rows)
    labels, docs, kept = prepare(val)
    scored = [val[i] for i in kept]
    if kind == "generator":
        scorers = fit([r for r in train if not (r["label"] == "machine" and str(r.get("generator")) == name)])
        test = [i for i, r in enumerate(scored) if in_generator_test(r, name)]
        y = [labels[i] for i in test]
        return {k: auroc_block(y, score([docs[i] for i in test]), tpr=True) for k, score in scorers.items()}
    if kind != "domain":
        raise SystemExit(f"a fold is generator:NAME or domain:NAME, not {fold!r}")
    scorers = fit([r for r in train if not in_domain_test(r, name)])
    test = [i for i, r in enumerate(scored) if in_domain_test(r, name)]
    y = [labels[i] for i in test]
    web_docs = prepare(web_split(web, "eval"))[1]
    cells = {}
    for k, score in scorers.items():
        raw = score([docs[i] for i in test])
        if all(y) and web_docs:
            cells[k] = auroc_block([False] * len(web_docs) + y, score(web_docs) + raw, tpr=True)
            cells[k]["negatives"] = "web-human eval split"
        else:
            cells[k] = auroc_block(y, raw, tpr=True)
    return cells


def full_numbers(rows: list[dict[str, Any]], web: list[dict[str, Any]], score: Scorer) -> dict[str, Any]:
    """Validation AUROC / TPR at 1% and 5% FPR, and web-human ``eval`` pages against validation machine texts."""
    from curate.score.labelled import prepare, split_rows, web_split
    from curate.score.metrics import auroc, tpr_at_fpr
    from curate.score.ood import web_vs_machine

    labels, docs, _ = prepare(split_rows(rows)[1])
    raw = score(docs)
    web_raw = score(prepare(web_split(web, "eval"))[1])
    return {
        "n": len(labels),
        "auroc": round(auroc(labels, raw), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, raw, 0.01), 4),
        "tpr_at_5pct_fpr": round(tpr_at_fpr(labels, raw, 0.05), 4),
        "web_vs_validation_machine": web_vs_machine(web_raw, [s for s, y in zip(raw, labels, strict=True) if y]),
    }


def main() -> None:
    import torch

    from curate.score.encoder import MiniLMEncoder
    from curate.score.finetune import N_LAYERS, FineTuneConfig, build_cache
    from curate.score.labelled import prepare, read_labelled, read_web_human, split_rows, web_split
    from curate.score.ood import fold_table, summarise

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mgt" / "train.jsonl.gz")
    p.add_argument("--web", type=Path, default=ROOT / "tests" / "data" / "mgt" / "web-human.jsonl.gz")
    p.add_argument("--k", type=int, default=1, choices=(1, 2))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr-layers", type=float, default=3e-5)
    p.add_argument("--lr-head", type=float, default=1e-4)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-share", type=float, default=1.0)
    p.add_argument("--folds", default=DEFAULT_FOLDS)
    p.add_argument("--no-full", action="store_true")
    p.add_argument("--cache", type=Path, default=Path("/tmp/mgt-finetune-cache"))
    p.add_argument("--out", type=Path, default=Path("mgt_finetune.json"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    config = FineTuneConfig(
        k=args.k,
        epochs=args.epochs,
        batch=args.batch,
        lr_layers=args.lr_layers,
        lr_head=args.lr_head,
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    rows, web = read_labelled(args.data), read_web_human(args.web)
    train, val = split_rows(rows)
    train = [r for r in train if keep_share(str(r.get("group") or r.get("id")), args.train_share)]
    rows = train + val
    out: dict[str, Any] = {
        "settings": {**config.as_dict(), "train_share": args.train_share, "threads": args.threads},
        "data": {"train_rows": len(train), "validation_rows": len(val)},
        "folds": {},
    }

    def save() -> None:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        tmp.replace(args.out)

    def log(event: dict[str, Any]) -> None:
        print(json.dumps(event), file=sys.stderr, flush=True)

    texts: list[str] = []
    for part in (train, val, web_split(web, "eval")):
        for words in prepare(part)[1]:
            texts += doc_window_texts(words)
    distinct = list(dict.fromkeys(texts))
    encoder = MiniLMEncoder("cpu", list(range(N_LAYERS + 1)), 256)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done // encoder.batch_size % 20 == 0 or done == total:
            log({"cache": done, "of": total, "s": round(time.perf_counter() - started)})

    cache, cost = timed(lambda: build_cache(encoder, distinct, N_LAYERS - args.k, args.cache, progress))
    out["cache"] = {"windows": len(cache), "tokens": int(cache.offsets[-1]), **cost}
    save()
    det = Detectors(encoder, cache, train, config, log)
    summaries: list[dict[str, Any]] = []
    memo: dict[frozenset[str], dict[str, Scorer]] = {}

    def finetuned(fit_rows: list[dict[str, Any]]) -> dict[str, Scorer]:
        key = frozenset(str(r["id"]) for r in fit_rows)
        if key not in memo:  # fold_table asks for each variant in turn: train once per fold
            memo.clear()
            memo[key], summary = det.fit_finetuned(fit_rows)
            summaries.append(summary)
        return memo[key]

    fits: dict[str, Fit] = {
        "v1": lambda r: {"v1": det.fit_v1(r)},
        "start": lambda r: {"start": det.fit_start(r)},
        "finetuned": finetuned,
    }
    names = ["v1", "start", "finetuned", "finetuned_last"]
    if args.folds == "all":
        for name in names:
            fit = fits.get(name, finetuned)
            table, cost = timed(lambda fit=fit, name=name: fold_table(rows, web, lambda r: fit(r)[name]))
            out[f"fold_table_{name}"] = {**table, **cost}
            out["training"] = list(summaries)
            save()
    else:
        for i, fold in enumerate(f for f in args.folds.split(",") if f):
            if i == 3 and not args.no_full:
                run_full(out, rows, web, train, fits, summaries, save, log)
            cell: dict[str, Any] = {}
            for fit in fits.values():
                summaries.clear()
                result, cost = timed(lambda fit=fit, fold=fold: fold_cell(rows, web, fold, fit))
                for name, c in result.items():
                    cell[name] = {**c, **cost, **({"training": summaries[0]} if summaries else {})}
                log({"fold": fold, **result, **cost})
                out["folds"][fold] = cell
                save()
        if not args.no_full and "full" not in out:
            run_full(out, rows, web, train, fits, summaries, save, log)
        for name in names:
            nested: dict[str, dict[str, Any]] = {}
            for fold, cell in out["folds"].items():
                kind, fold_name = fold.split(":", 1)
                nested.setdefault(kind, {})[fold_name] = cell[name]
            if nested:
                summary = summarise(nested)
                out[f"summary_{name}"] = {"macro": summary["macro"], "worst": summary["worst"]}
        save()
    print(json.dumps(out))


def run_full(
    out: dict[str, Any],
    rows: list[dict[str, Any]],
    web: list[dict[str, Any]],
    train: list[dict[str, Any]],
    fits: dict[str, Fit],
    summaries: list[dict[str, Any]],
    save: Callable[[], None],
    log: Callable[[dict[str, Any]], None],
) -> None:
    """The fit on the whole (kept) training split of each detector: validation and web numbers (``out['full']``)."""
    out["full"] = {}
    for fit in fits.values():
        summaries.clear()
        scorers, cost = timed(lambda fit=fit: fit(train))
        for name, score in scorers.items():
            result, cost_score = timed(lambda score=score: full_numbers(rows, web, score))
            out["full"][name] = {
                **result,
                "fit": cost,
                "score": cost_score,
                **({"training": summaries[0]} if summaries else {}),
            }
            log({"full": name, **result, "fit": cost})
            save()


if __name__ == "__main__":
    main()
