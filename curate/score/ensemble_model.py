"""The kind ``ensemble``: a stacked combination of registered detectors (by default the CPU fastText model and
the MiniLM transformer).

A document's raw score is sigmoid(sum_i w_i * logit(p_i) + b), where p_i is member i's calibrated probability;
the weights are a logistic regression fitted on the calibration half of the validation groups (texts neither
member trained on). The card pins each member's calibration, so a retrained member makes the ensemble refuse
to load until it is refitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score import fasttext_model, minilm_model
from curate.score.labelled import Keep, calibration_rows, prepare, split_rows
from curate.score.metrics import auroc, clipped_logit, fit_platt, leave_one_out_table, platt
from curate.score.minilm_model import fit_head
from curate.score.model import MgtModel, finish_card, retrain_hint
from curate.score.single import load_single

ENSEMBLE_MEMBERS = ("mgt-fasttext-v1", "mgt-minilm-v1")
STACK_L2 = 1e-3


class EnsembleModel(MgtModel):
    """Stacked members; it scores a document only when every member can."""

    kind = "ensemble"

    def __init__(self, name: str, card: dict[str, Any], members: Sequence[MgtModel], weights: Sequence[float]) -> None:
        super().__init__(name, card)
        self.members = list(members)
        self.weights = np.asarray(weights, dtype=np.float64)  # one per member, then the bias
        langs = set(self.members[0].languages)
        for m in self.members[1:]:
            langs &= set(m.languages)
        self.languages = tuple(sorted(langs))

    def member_logits(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """``(len(docs), members)`` logits of each member's calibrated probability."""
        return logit_columns([[m.calibrate(s) for s in m.raw_doc_scores(docs)] for m in self.members], len(docs))

    def stack(self, logits: np.ndarray) -> list[float]:
        """Stacked probability of each row of member logits (see :meth:`member_logits`)."""
        return stack(logits, self.weights)

    def raw_doc_scores(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """Stacked probability of each document."""
        return self.stack(self.member_logits(docs)) if docs else []


def logit_columns(probs: Sequence[Sequence[float]], n_docs: int) -> np.ndarray:
    """``(n_docs, members)`` clipped logits of each member's calibrated probabilities (one sequence a member)."""
    return clipped_logit(np.asarray(probs, dtype=np.float64).T.reshape(n_docs, len(probs)))


def fit_stack(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Stacking weights (one per member column of ``logits``, then the bias) of an L2-regularised logistic
    regression, rounded as the card stores them."""

    head = fit_head(logits, labels, STACK_L2)
    w = head["weight"].astype(np.float64) / head["scale"]
    b = float(head["bias"][0]) - float(w @ head["mean"])
    return np.asarray(np.round(np.concatenate([w, [b]]), 9), dtype=np.float64)


def stack(logits: np.ndarray, weights: np.ndarray) -> list[float]:
    """sigmoid(logits · weights[:-1] + weights[-1]) for each row of member logits."""
    from scipy.special import expit

    return [float(v) for v in expit(logits @ weights[:-1] + weights[-1])]


def pinned_calibration(member: MgtModel) -> list[float]:
    """A member's Platt parameters as a combining card (ensemble, cascade) pins them: 9 decimals."""
    return [round(member.platt_a, 9), round(member.platt_b, 9)]


def check_pinned(kind: str, name: str, member: MgtModel, spec: dict[str, Any]) -> None:
    """Refuse ``member`` when it is not the version the ``kind`` classifier ``name`` was fitted on (its card's
    ``spec`` pins the member's calibration).

    Raises:
        ModelError: the member was retrained after ``name`` was fitted, with the command that refits ``name``.
    """
    if pinned_calibration(member) != [round(float(v), 9) for v in spec["calibration"]]:
        raise ModelError(f"{kind} {name!r} was fitted on another version of {spec['name']!r}; {retrain_hint(name)}")


def load(name: str, card: dict[str, Any], device: str = "auto") -> EnsembleModel:
    """Load the ensemble's members (on ``device``) and check they are the ones it was fitted on.

    Raises:
        ModelError: a member is missing, or was retrained after the ensemble was fitted.
    """
    members = []
    for spec in card["members"]:
        member = load_single(spec["name"], device)
        check_pinned("ensemble", name, member, spec)
        members.append(member)
    return EnsembleModel(name, card, members, card["stack_weights"])


def leave_one_out(rows: list[dict[str, Any]], device: str = "auto") -> dict[str, dict[str, Any]]:
    """Leave-one-generator-out and leave-one-domain-out AUROC of the whole ensemble
    (:func:`curate.score.metrics.leave_one_out_table`).

    Each fold refits both members without the left-out generator or domain (a fastText fit; a MiniLM head on
    encoder features computed once), fits each member's Platt calibration and the stack on the calibration half
    of the validation rows the fold keeps, and scores the validation rows. Costs one MiniLM pass over the
    training windows (about 15 minutes on 2 CPU cores) plus two fits per fold; every fit is deterministic, so
    the table is reproducible from the command and the data (to float rounding of the encoder's machine).
    """
    train_rows, val_rows = split_rows(rows)
    labels, val_docs, kept = prepare(val_rows)
    scored = [val_rows[i] for i in kept]
    y = np.asarray(labels, dtype=bool)
    cal = np.asarray(calibration_rows(scored), dtype=bool)
    minilm = load_single("mgt-minilm-v1", device)
    if not isinstance(minilm, minilm_model.MiniLMModel):
        raise ModelError("the ensemble's leave-one-out table needs mgt-minilm-v1 to be a minilm model")
    params = minilm.card.get("minilm_params", minilm_model.MINILM_PARAMS)
    train_feats = minilm_model.window_table(minilm, train_rows)
    minilm_fold = minilm_model.fold_scorer(
        train_rows, train_feats, minilm.window_features(val_docs), len(val_docs), params
    )

    def score(keep: Keep) -> list[float]:
        fit_mask = cal & np.array([keep(r) for r in scored], dtype=bool)
        fasttext = fasttext_model.fit([r for r in train_rows if keep(r)])  # one thread: reproducible
        calibrated = []
        for raw in (fasttext.raw_doc_scores(val_docs), minilm_fold(keep)):
            a, b = fit_platt(list(np.asarray(raw)[fit_mask]), list(y[fit_mask]))
            calibrated.append([platt(s, a, b) for s in raw])
        logits = logit_columns(calibrated, len(val_docs))
        return stack(logits, fit_stack(logits[fit_mask], y[fit_mask]))

    return leave_one_out_table(rows, score)


def train(
    name: str,
    rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    *,
    device: str = "auto",
    leave_one_out_tables: bool = False,
) -> dict[str, Any]:
    """Fit the stacking weights of ``name`` over the registered members; return its card.

    The card also reports AUROC of each member and of the ensemble on the other half of the validation groups,
    which no part of the ensemble was fitted on.
    """
    _, val_rows = split_rows(rows)
    members = [load_single(m, device) for m in ENSEMBLE_MEMBERS]
    labels, docs, kept = prepare(val_rows)
    model = EnsembleModel(name, {}, members, [1.0] * len(members) + [0.0])
    x = model.member_logits(docs)
    y = np.asarray(labels, dtype=bool)
    cal = np.asarray(calibration_rows([val_rows[i] for i in kept]), dtype=bool)
    model.weights = fit_stack(x[cal], y[cal])
    raw = model.stack(x)  # the members' logits of these documents are already in x
    held = ~cal
    heldout = {m.name: round(auroc(y[held], x[held, i]), 4) for i, m in enumerate(members)}
    heldout[name] = round(auroc(y[held], np.asarray(raw)[held]), 4)
    extra: dict[str, Any] = {
        "members": [{"name": m.name, "kind": m.kind, "calibration": pinned_calibration(m)} for m in members],
        "stack_weights": [float(v) for v in model.weights],
        "stacking": f"logistic regression on member logits, L2 {STACK_L2}, fit on the calibration half",
        "heldout_half_auroc": heldout,
    }
    if leave_one_out_tables:
        extra["leave_one_out"] = leave_one_out(rows, device)
    return finish_card(model, rows, val_rows, data, folder, extra=extra, val_raw=raw)
