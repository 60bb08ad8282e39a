"""The CPU detector kind ``fasttext``: word 1-3-gram fastText over normalised 128-word windows.

A document's raw score is the mean window P(machine). Every fit runs in a freshly spawned process (see
:func:`train_supervised`), so the same data gives a byte-identical ``model.bin``. The model is kept
unquantized: a quantized one is several times smaller but predicts at under half the speed (product-quantized
rows cost more to add up than plain ones), and speed is what this kind is for.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score.labelled import WEB_SPLITS, balance_copies, prepare, split_rows, web_split
from curate.score.metrics import doc_means, leave_one_out_table
from curate.score.model import MgtModel, finish_card, load_card, model_dir, retrain_hint, write_card
from curate.score.ood import TARGETS, data_digests, fold_table, verdicts, web_fpr, web_vs_machine
from curate.score.text import normalise, unscorable, windows

MODEL_FILE = "model.bin"
MACHINE_LABEL = "__label__machine"
FASTTEXT_PARAMS: dict[str, Any] = {
    "wordNgrams": 3,
    "dim": 8,
    "epoch": 15,
    "lr": 0.3,
    "bucket": 300_000,
    "minCount": 2,
    "loss": "softmax",
    "seed": 1,
    "thread": 1,
}

# the balanced web recipe (mgt-fasttext-v2): see recipe_fit and the model card for why these values
FASTTEXT_PARAMS_WEB: dict[str, Any] = {**FASTTEXT_PARAMS}
WEB_COPIES = 6  # each real human web page of the train split is shown this many times
COMPARE_WITH = "mgt-fasttext-v1"  # a web-recipe card also measures this classifier and its recipe, for comparison
FOLD_JOBS = 4  # leave-one-out folds fitted at a time (each fit is single-threaded and deterministic)


class FastTextModel(MgtModel):
    """A loaded fastText MGT model with its calibration."""

    kind = "fasttext"

    def __init__(self, name: str, card: dict[str, Any], model: Any) -> None:
        super().__init__(name, card)
        self.model = model

    def raw_doc_scores(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """Mean window P(machine) of each document; the windows of all ``docs`` go to fastText in one call."""
        texts, owner = self.window_texts(docs)
        if not texts:
            return []
        labels, probs = self.model.predict(texts, k=2)
        machine = [
            min(next((float(q) for lab, q in zip(labs, ps, strict=True) if lab == MACHINE_LABEL), 0.0), 1.0)
            for labs, ps in zip(labels, probs, strict=True)
        ]
        return [float(v) for v in doc_means(np.asarray(machine), owner, len(docs))]


def _quiet_fasttext() -> Any:
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    return fasttext


def load_file(path: Path) -> Any:
    """A fastText model file, loaded with fastText's warnings silenced.

    Raises:
        ModelError: the file is missing or not a fastText model.
    """
    if not path.is_file():
        raise ModelError(f"fastText model {path} is missing")
    try:
        return _quiet_fasttext().load_model(str(path))
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ModelError(f"fastText model {path} is corrupt ({e})") from None


def load(name: str, card: dict[str, Any]) -> FastTextModel:
    """Load ``classifiers/<name>/model.bin`` with its ``card``.

    Raises:
        ModelError: the model file is missing or corrupt, with the command to retrain.
    """
    model_path = model_dir(name) / MODEL_FILE
    if not model_path.exists():
        raise ModelError(f"classifier {name!r} not found: {model_path} is missing; {retrain_hint(name)}")
    try:
        model = _quiet_fasttext().load_model(str(model_path))
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ModelError(f"classifier model {model_path} is corrupt ({e}); {retrain_hint(name)}") from None
    return FastTextModel(name, card, model)


def write_training_file(
    rows: list[dict[str, Any]], path: Path, seed: int = 1, copies: Sequence[int] | None = None
) -> None:
    """One line per window, shuffled with ``seed``: single-threaded SGD must not see the data in source order.

    ``copies``: how many times each row's windows are written (:func:`curate.score.labelled.balance_copies`;
    0 leaves a row out); once each when None.
    """
    import random

    lines: list[str] = []
    for r, k in zip(rows, copies if copies is not None else [1] * len(rows), strict=True):
        words = normalise(r["text"])
        if k == 0 or unscorable(words) is not None:
            continue
        lines.extend(f"__label__{r['label']} {' '.join(win)}\n" for win in windows(words) for _ in range(k))
    random.Random(seed).shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")


def _fit_worker(train_file: str, model_file: str, params: dict[str, Any]) -> None:
    _quiet_fasttext().train_supervised(train_file, verbose=0, **params).save_model(model_file)


def train_supervised(train_file: Path, model_file: Path, params: dict[str, Any]) -> None:
    """Train a fastText model into ``model_file``, in a freshly spawned process.

    fastText 0.9.2 initialises the input matrix in ten blocks, one per training thread, so with ``thread = 1``
    nine tenths of it keep whatever the memory held: zeros in a fresh process, leftovers of earlier work in a
    long-lived one (different models, and sometimes "Encountered NaN"). A fresh process makes every training
    from the same data byte-identical, also when called repeatedly from one notebook.

    Raises:
        ModelError: the training process failed.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_fit_worker, args=(str(train_file), str(model_file), params))
    proc.start()
    proc.join()
    if proc.exitcode != 0 or not model_file.exists():
        raise ModelError(f"fastText training on {train_file} failed (exit code {proc.exitcode})")


def fit(
    rows: list[dict[str, Any]],
    threads: int = 1,
    *,
    params: dict[str, Any] | None = None,
    copies: Sequence[int] | None = None,
) -> FastTextModel:
    """An uncalibrated model trained on ``rows`` (for leave-one-out tables); with one thread (the default) the
    same rows give the same model, so a leave-one-out table is reproducible from the command and the data.

    ``params``: fastText parameters (default :data:`FASTTEXT_PARAMS`); ``copies``: see :func:`write_training_file`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path, model_file = Path(tmp) / "train.txt", Path(tmp) / "model.bin"
        write_training_file(rows, path, copies=copies)
        train_supervised(path, model_file, {**(params or FASTTEXT_PARAMS), "thread": threads})
        ft = _quiet_fasttext().load_model(str(model_file))
    return FastTextModel("loo", {}, ft)


def leave_one_out(rows: list[dict[str, Any]], threads: int = 1) -> dict[str, dict[str, Any]]:
    """Leave-one-generator-out and leave-one-domain-out AUROC (:func:`curate.score.metrics.leave_one_out_table`): a fresh
    fastText fit per fold, single-threaded by default so that the table is reproducible (fastText's
    multi-threaded training is not)."""
    train_rows, val_rows = split_rows(rows)
    _, val_docs, _ = prepare(val_rows)
    return leave_one_out_table(
        rows, lambda keep: fit([r for r in train_rows if keep(r)], threads).raw_doc_scores(val_docs)
    )


def recipe_fit(train_rows: list[dict[str, Any]], web: list[dict[str, Any]] | None, threads: int = 1) -> FastTextModel:
    """An uncalibrated model fitted on labelled ``train_rows`` by a training recipe: without ``web`` the v1
    recipe (every row once, :data:`FASTTEXT_PARAMS`); with it the balanced web recipe (the ``train`` split of
    the real human web pages added, copies by :func:`curate.score.labelled.balance_copies`,
    :data:`FASTTEXT_PARAMS_WEB`)."""
    if web is None:
        return fit(train_rows, threads)
    both = train_rows + web_split(web, "train")
    return fit(both, threads, params=FASTTEXT_PARAMS_WEB, copies=balance_copies(both, WEB_COPIES))


def ood_section(
    model: MgtModel,
    rows: list[dict[str, Any]],
    web: list[dict[str, Any]],
    rule: tuple[float, float],
    *,
    recipe_web: list[dict[str, Any]] | None,
    folds: bool,
) -> dict[str, Any]:
    """The card's ``ood`` section for calibrated ``model`` (:mod:`curate.score.ood`): its false-positive rates
    on the ``eval`` split of the real human web pages at ``rule`` = (threshold, reference quantile), those
    pages against the validation machine texts, and with ``folds`` the leave-one-generator/domain-out folds,
    each refitted by the recipe ``recipe_web`` says (:func:`recipe_fit`)."""
    _, val_rows = split_rows(rows)
    labels, val_docs, _ = prepare(val_rows)
    _, eval_docs, _ = prepare(web_split(web, "eval"))
    _, ref_docs, _ = prepare(web_split(web, "reference"))
    eval_raw = model.raw_doc_scores(eval_docs)
    machine_raw = [s for s, y in zip(model.raw_doc_scores(val_docs), labels, strict=True) if y]
    out: dict[str, Any] = {
        "web": {
            **web_fpr(
                [model.calibrate(s) for s in eval_raw],
                [model.calibrate(s) for s in model.raw_doc_scores(ref_docs)],
                *rule,
            ),
            "vs_validation_machine": web_vs_machine(eval_raw, machine_raw),
        },
        "data_digests": data_digests(rows, web),
        "targets": TARGETS,
    }
    if folds:
        out.update(fold_table(rows, web, lambda kept: recipe_fit(kept, recipe_web).raw_doc_scores, jobs=FOLD_JOBS))
        out["meets"] = verdicts(out)
    return out


def train(
    name: str,
    rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    *,
    leave_one_out_tables: bool = False,
    web: list[dict[str, Any]] | None = None,
    web_path: Path | None = None,
    rule: tuple[float, float] = (0.5, 0.95),
) -> dict[str, Any]:
    """Train, calibrate and document ``name`` in ``folder``; return its card.

    Training is single-threaded with a fixed seed and shuffled windows, in a fresh process: byte-reproducible.
    With ``web`` (real pre-cutoff human web pages, :func:`curate.score.labelled.read_web_human`, read from
    ``web_path``) the balanced web recipe is used (:func:`recipe_fit`), the calibration holds on web text
    (:func:`curate.score.model.fit_web_calibration`, on the ``reference`` split) and the card gets an ``ood``
    section (:func:`ood_section`; with ``leave_one_out_tables`` its refit-per-fold folds, 15 more fits).
    ``rule``: (threshold, reference quantile) of the recipe the web false-positive rates are measured at.
    """
    if web is not None:
        return _train_web(name, rows, data, folder, web=web, web_path=web_path, rule=rule, folds=leave_one_out_tables)
    train_rows, val_rows = split_rows(rows)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        write_training_file(train_rows, train_file)
        train_supervised(train_file, model_path, FASTTEXT_PARAMS)
    model = FastTextModel(name, {}, _quiet_fasttext().load_model(str(model_path)))
    extra: dict[str, Any] = {"fasttext_params": FASTTEXT_PARAMS, "quantized": False}
    if leave_one_out_tables:
        extra["leave_one_out"] = leave_one_out(rows)
    return finish_card(model, rows, val_rows, data, folder, extra=extra)


def _train_web(
    name: str,
    rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    *,
    web: list[dict[str, Any]],
    web_path: Path | None,
    rule: tuple[float, float],
    folds: bool,
) -> dict[str, Any]:
    train_rows, val_rows = split_rows(rows)
    both = train_rows + web_split(web, "train")
    copies = balance_copies(both, WEB_COPIES)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        write_training_file(both, train_file, copies=copies)
        train_supervised(train_file, model_path, FASTTEXT_PARAMS_WEB)
    model = FastTextModel(name, {}, _quiet_fasttext().load_model(str(model_path)))
    _, ref_docs, _ = prepare(web_split(web, "reference"))
    shown: dict[str, int] = {}
    for r, k in zip(both, copies, strict=True):
        key = f"{r.get('domain')}/{r['label']}"
        shown[key] = shown.get(key, 0) + k
    extra: dict[str, Any] = {
        "fasttext_params": FASTTEXT_PARAMS_WEB,
        "quantized": False,
        "training": {
            "recipe": "balanced-web",
            "rows_shown": dict(sorted(shown.items())),
            "web_copies": WEB_COPIES,
            "rule": "one-class domains (essay: machine only) left out, so a domain cannot stand for a label; "
            f"real human web pages (web-human train split) added, each shown {WEB_COPIES} times",
            "web_human": {
                "path": web_path.name if web_path else None,
                "rows": {s: len(web_split(web, s)) for s in WEB_SPLITS},
                "sites": {s: len({r["site"] for r in web_split(web, s)}) for s in WEB_SPLITS},
            },
        },
    }
    card = finish_card(model, rows, val_rows, data, folder, extra=extra, web_raw=model.raw_doc_scores(ref_docs))
    card["ood"] = ood_section(model, rows, web, rule, recipe_web=web, folds=folds)
    if folds:
        card["leave_one_out"] = card["ood"]["folds"]
    write_card(folder, card)
    if model_dir(COMPARE_WITH).is_dir():
        card["ood"]["compare"] = {COMPARE_WITH: compare_section(rows, web, rule, folds=folds)}
        write_card(folder, card)
    return card


def compare_section(
    rows: list[dict[str, Any]], web: list[dict[str, Any]], rule: tuple[float, float], *, folds: bool
) -> dict[str, Any]:
    """:func:`ood_section` of the registered :data:`COMPARE_WITH` classifier, its folds refitted by its own
    (v1) recipe: the same folds, web pages and rule as the web recipe's card, for its comparison row."""
    v1 = load(COMPARE_WITH, load_card(COMPARE_WITH))
    return ood_section(v1, rows, web, rule, recipe_web=None, folds=folds)
