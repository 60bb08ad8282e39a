"""The kind ``lexical``: fastText stacked with generator-agnostic lexical features (issue 15, ``mgt-lexical-v1``).

Two fastText models of the ``mgt-fasttext-v1`` recipe, each fitted on one half of the training groups
(``half0.bin``, ``half1.bin``), and a logistic regression on [their mean document logit, the 16 word-frequency
features of :mod:`curate.score.lexical`], whose standardisation, weights and bias live in the card
(``stack``). A document's raw score is the regression's P(machine); the Platt calibration on top is fitted like
``mgt-fasttext-v2``'s when real human web pages are given (:func:`curate.score.model.fit_web_calibration`), so
the probability holds on web text. Training (:func:`train`) is deterministic: single-threaded fastText fits with
a fixed seed in fresh processes, a deterministic L-BFGS regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score import fasttext_model, lexical
from curate.score.labelled import WEB_SPLITS, prepare, split_rows, web_split
from curate.score.model import MgtModel, finish_card, load_card, model_dir, retrain_hint, write_card
from curate.score.ood import fold_table, verdicts

FOLD_JOBS = 1  # leave-one-out folds fitted at a time (the result does not depend on it)
COMPARE_WITH = ("mgt-fasttext-v1", "mgt-fasttext-v2")  # registered cards whose ``ood`` numbers the card repeats


class LexicalModel(MgtModel):
    """A loaded lexical stack: the two fastText halves, the regression head and the calibration."""

    kind = "lexical"

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        halves: Sequence[fasttext_model.FastTextModel],
        head: lexical.Head,
    ) -> None:
        super().__init__(name, card)
        self.halves = list(halves)
        self.head = head

    def raw_doc_scores(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """The regression's P(machine) of each document (:func:`curate.score.lexical.stack_scores`)."""
        return lexical.stack_scores(self.halves, self.head, docs)


def head_to_card(head: lexical.Head) -> dict[str, Any]:
    """The regression as the card stores it: its input columns, standardisation, weights and bias (float32
    values written exactly, so the loaded head scores like the fitted one)."""
    return {
        "inputs": list(lexical.STACK_INPUTS),
        "mean": [float(v) for v in head["mean"]],
        "scale": [float(v) for v in head["scale"]],
        "weight": [float(v) for v in head["weight"]],
        "bias": float(head["bias"][0]),
        "l2": lexical.STACK_L2,
        "fit": "L-BFGS logistic regression on standardised inputs; the fastText logit of a training row is the "
        "out-of-fold one (the half that did not see its group)",
    }


def head_from_card(name: str, card: dict[str, Any]) -> lexical.Head:
    """The regression head of a lexical card.

    Raises:
        ModelError: the card's ``stack`` is missing, malformed, or for other input columns than this code computes.
    """
    where = model_dir(name) / "card.json"
    try:
        spec = card["stack"]
        head = {
            "mean": np.asarray(spec["mean"], dtype=np.float32),
            "scale": np.asarray(spec["scale"], dtype=np.float32),
            "weight": np.asarray(spec["weight"], dtype=np.float32),
            "bias": np.asarray([spec["bias"]], dtype=np.float32),
        }
        inputs = list(spec["inputs"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"classifier card {where} has no readable stack ({e!r}); {retrain_hint(name)}") from None
    n = len(lexical.STACK_INPUTS)
    if inputs != list(lexical.STACK_INPUTS) or any(v.shape != (n,) for k, v in head.items() if k != "bias"):
        raise ModelError(
            f"classifier card {where} stacks other inputs than {', '.join(lexical.STACK_INPUTS)}; {retrain_hint(name)}"
        )
    if not all(np.all(np.isfinite(v)) for v in head.values()) or not np.all(head["scale"] > 0):
        raise ModelError(f"classifier card {where} has a stack with non-finite weights; {retrain_hint(name)}")
    return head


def load(name: str, card: dict[str, Any]) -> LexicalModel:
    """Load ``classifiers/<name>/`` (the two fastText halves) with its ``card``.

    Raises:
        ModelError: a model file is missing or corrupt, or the card's stack is unreadable, with the command to
            retrain.
    """
    halves = []
    for h, file in enumerate(lexical.HALF_FILES):
        path = model_dir(name) / file
        try:
            halves.append(fasttext_model.FastTextModel(f"{name}/half{h}", {}, fasttext_model.load_file(path)))
        except ModelError as e:
            raise ModelError(f"classifier {name!r}: {e}; {retrain_hint(name)}") from None
    return LexicalModel(name, card, halves, head_from_card(name, card))


def ood_section(
    model: MgtModel, rows: list[dict[str, Any]], web: list[dict[str, Any]], rule: tuple[float, float], *, folds: bool
) -> dict[str, Any]:
    """The card's ``ood`` section (:mod:`curate.score.ood`, the layout of ``mgt-fasttext-v2``'s): the web
    false-positive rates of calibrated ``model`` at ``rule`` and its web pages against the validation machine
    texts; with ``folds`` the leave-one-generator/domain-out folds, each a fresh :func:`curate.score.lexical.stack_fit`
    without the held-out generator or domain (15 fits of two fastText halves each, one at a time)."""
    out = fasttext_model.ood_section(model, rows, web, rule, recipe_web=None, folds=False)
    if folds:
        out.update(fold_table(rows, web, lexical.stack_fit, jobs=FOLD_JOBS))
        out["meets"] = verdicts(out)
    return out


def compare_section(digests: dict[str, str]) -> dict[str, Any]:
    """The ``ood`` numbers of the registered :data:`COMPARE_WITH` classifiers, copied from their cards (v1's from
    v2's ``ood.compare``, where it was measured on the same folds), for those measured on the same data
    (``digests``); a classifier measured on other data, or without an ``ood`` section, is left out."""
    out: dict[str, Any] = {}
    for other in COMPARE_WITH:
        if not (model_dir(other) / "card.json").is_file():
            continue
        ood = load_card(other).get("ood")
        if not ood:
            continue
        for name, section in [(other, ood), *ood.get("compare", {}).items()]:
            if name in COMPARE_WITH and name not in out and section.get("data_digests") == digests:
                entry = {k: v for k, v in section.items() if k != "compare"}
                entry.setdefault("folds_source", f"classifiers/{other}/card.json ood")
                out[name] = entry
    return dict(sorted(out.items()))


def train(
    name: str,
    rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    *,
    web: list[dict[str, Any]] | None = None,
    web_path: Path | None = None,
    rule: tuple[float, float] = (0.5, 0.95),
    folds: bool = False,
) -> dict[str, Any]:
    """Fit, calibrate and document ``name`` in ``folder`` on the training split of ``rows``; return its card.

    With ``web`` (real pre-cutoff human web pages, read from ``web_path``) the calibration holds on web text (fitted
    with the ``reference`` split, :func:`curate.score.model.fit_web_calibration`) and the card gets an ``ood``
    section (:func:`ood_section`, measured at ``rule`` = (threshold, reference quantile); with ``folds`` its
    refit-per-fold table, 15 more stack fits) and a ``compare`` entry (:func:`compare_section`). Without ``web``
    the calibration assumes the validation split's class balance, as v1's does.

    Raises:
        ModelError: a fastText fit failed.
    """
    train_rows, val_rows = split_rows(rows)
    halves, fitted = lexical.fit_stack(train_rows, folder)
    extra: dict[str, Any] = {
        "fasttext_params": fasttext_model.FASTTEXT_PARAMS,
        "quantized": False,
        "halves": {
            "files": list(lexical.HALF_FILES),
            "split": "sha1('lexical-half:' + group) % 2 of the training groups",
            "rows": [sum(lexical.half_of(r) == h for r in train_rows) for h in (0, 1)],
        },
        "stack": head_to_card(fitted),
        "features": {
            "names": list(lexical.FEATURES),
            "wordlist": "wordfreq {} {} (Zipf frequencies; data CC-BY-SA 4.0)".format(*lexical.WORDLIST),
            "wordfreq_version": _wordfreq_version(),
        },
    }
    model = LexicalModel(name, {}, halves, fitted)
    model.head = head_from_card(name, {"stack": extra["stack"]})  # score exactly as a loaded model will
    if web is None:
        return finish_card(model, rows, val_rows, data, folder, extra=extra)
    extra["training"] = {
        "recipe": "v1 (labelled training split only; web pages calibrate, never train)",
        "web_human": {
            "path": web_path.name if web_path else None,
            "rows": {s: len(web_split(web, s)) for s in WEB_SPLITS},
            "sites": {s: len({r["site"] for r in web_split(web, s)}) for s in WEB_SPLITS},
        },
    }
    _, ref_docs, _ = prepare(web_split(web, "reference"))
    card = finish_card(model, rows, val_rows, data, folder, extra=extra, web_raw=model.raw_doc_scores(ref_docs))
    card["ood"] = ood_section(model, rows, web, rule, folds=folds)
    if folds:
        card["leave_one_out"] = card["ood"]["folds"]
    compare = compare_section(card["ood"]["data_digests"])
    if compare:
        card["ood"]["compare"] = compare
    write_card(folder, card)
    return card


def _wordfreq_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wordfreq")
    except PackageNotFoundError:
        return None
