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
from curate.score.labelled import prepare, split_rows
from curate.score.metrics import doc_means, leave_one_out_table
from curate.score.model import MgtModel, finish_card, model_dir, retrain_hint
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


def write_training_file(rows: list[dict[str, Any]], path: Path, seed: int = 1) -> None:
    """One line per window, shuffled with ``seed``: single-threaded SGD must not see the data in source order."""
    import random

    lines: list[str] = []
    for r in rows:
        words = normalise(r["text"])
        if unscorable(words) is not None:
            continue
        lines.extend(f"__label__{r['label']} {' '.join(win)}\n" for win in windows(words))
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


def fit(rows: list[dict[str, Any]], threads: int = 1) -> FastTextModel:
    """An uncalibrated model trained on ``rows`` (for leave-one-out tables); with one thread (the default) the
    same rows give the same model, so a leave-one-out table is reproducible from the command and the data."""
    with tempfile.TemporaryDirectory() as tmp:
        path, model_file = Path(tmp) / "train.txt", Path(tmp) / "model.bin"
        write_training_file(rows, path)
        train_supervised(path, model_file, {**FASTTEXT_PARAMS, "thread": threads})
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


def train(
    name: str, rows: list[dict[str, Any]], data: Path, folder: Path, *, leave_one_out_tables: bool = False
) -> dict[str, Any]:
    """Train, calibrate and document ``name`` in ``folder``; return its card.

    Training is single-threaded with a fixed seed and shuffled windows, in a fresh process: byte-reproducible.
    """
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
