"""The kind ``cascade``: a cheap detector settles the documents it is sure of, an expensive one scores the rest.

Every document is scored by the cheap member (by default ``mgt-fasttext-v1``). A document whose calibrated
cheap score p lies outside the uncertain band ``[lo, hi]`` is decided there: its raw cascade score is p. A
document inside the band is escalated: its raw cascade score is the expensive member's calibrated probability
(by default ``mgt-ensemble-v1``, which stacks the cheap member's score, already computed, with the transformer's,
so only the transformer runs on escalated documents). Like every kind the raw score then goes through the
cascade's own Platt calibration, fitted on the calibration half of the validation groups, so a recipe threshold
means a probability whichever stage decided.

The band is chosen on the calibration half of the grouped validation split (texts neither member trained on):
among the bands that escalate at most ``max_escalated_share`` of those texts, the one with the highest AUROC
(ties: TPR at 1% FPR, then the narrower band). The card records the whole curve (escalation budget → band, share
escalated, AUROC and TPR at 1%/5% FPR on the other half), the members and their pinned calibrations: a member
retrained after the cascade was fitted makes the cascade refuse to load until ``curate classifiers train
mgt-cascade-v1 --data FILE`` refits the band over whatever members the card names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score.ensemble_model import EnsembleModel, check_pinned, logit_columns, pinned_calibration
from curate.score.labelled import calibration_rows, prepare, split_rows
from curate.score.metrics import auroc, tpr_at_fpr
from curate.score.model import MgtModel, finish_card, load_card, model_dir, retrain_hint

CASCADE_MEMBERS = {"cheap": "mgt-fasttext-v1", "expensive": "mgt-ensemble-v1"}
CASCADE_PARAMS: dict[str, Any] = {
    "max_escalated_share": 0.05,  # of the validation texts; the chosen band's budget
    "band_grid": 100,  # candidate band edges: quantiles 0, 1/100, ..., 1 of the cheap calibrated scores
    "curve_budgets": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0],
}

Loader = Callable[[str, str], MgtModel]  # (name, device) -> a loaded classifier of any kind (registry.load_model)


class CascadeModel(MgtModel):
    """A cheap member, an expensive member, and the band of cheap calibrated scores that escalates."""

    kind = "cascade"

    def __init__(
        self, name: str, card: dict[str, Any], cheap: MgtModel, expensive: MgtModel, band: Sequence[float]
    ) -> None:
        super().__init__(name, card)
        self.cheap = cheap
        self.expensive = expensive
        self.lo, self.hi = float(band[0]), float(band[1])
        self.languages = tuple(sorted(set(cheap.languages) & set(expensive.languages)))

    def cheap_probs(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """The cheap member's calibrated probability of each document."""
        return np.asarray([self.cheap.calibrate(s) for s in self.cheap.raw_doc_scores(docs)], dtype=np.float64)

    def expensive_probs(self, docs: Sequence[Sequence[str]], cheap: np.ndarray) -> np.ndarray:
        """The expensive member's calibrated probability of each document; ``cheap`` are the cheap member's
        calibrated probabilities of the same documents, reused where the expensive member is an ensemble that
        holds the cheap member (its other members alone run)."""
        if not docs:
            return np.zeros(0, dtype=np.float64)
        exp = self.expensive
        if isinstance(exp, EnsembleModel):
            cols = [
                cheap.tolist() if m.name == self.cheap.name else [m.calibrate(s) for s in m.raw_doc_scores(docs)]
                for m in exp.members
            ]
            raw = exp.stack(logit_columns(cols, len(docs)))
        else:
            raw = exp.raw_doc_scores(docs)
        return np.asarray([exp.calibrate(s) for s in raw], dtype=np.float64)

    def escalates(self, cheap: np.ndarray) -> np.ndarray:
        """Which documents, by their cheap calibrated probabilities, go to the expensive member."""
        return np.asarray((cheap >= self.lo) & (cheap <= self.hi), dtype=bool)

    def staged_scores(self, docs: Sequence[Sequence[str]]) -> tuple[list[float], np.ndarray]:
        """(raw cascade score of each document, whether it was escalated): the calibrated probability of the
        stage that decided. Only the escalated documents reach the expensive member, in one batch."""
        cheap = self.cheap_probs(docs)
        esc = self.escalates(cheap)
        out = cheap.copy()
        idx = [int(i) for i in np.flatnonzero(esc)]
        if idx:
            out[idx] = self.expensive_probs([docs[i] for i in idx], cheap[idx])
        return [float(v) for v in out], esc

    def raw_doc_scores(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """Raw cascade score of each document (see :meth:`staged_scores`)."""
        return self.staged_scores(docs)[0] if docs else []

    def escalated(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[bool | None]:
        """Whether each text is escalated to the expensive member when scored (None: the cascade gives it no
        score), for callers that record which stage decided. Costs the cheap member's pass only."""
        langs = list(languages) if languages is not None else [None] * len(texts)
        cheap = self.cheap.score_many(texts, langs)
        return [
            None if s is None or (lang is not None and lang not in self.languages) else bool(self.lo <= s <= self.hi)
            for (s, _, _), lang in zip(cheap, langs, strict=True)
        ]


def _pin(model: MgtModel) -> dict[str, Any]:
    """How the card pins a member: its name, kind and Platt parameters (:func:`pinned_calibration`)."""
    return {"name": model.name, "kind": model.kind, "calibration": pinned_calibration(model)}


def load(name: str, card: dict[str, Any], device: str, loader: Loader) -> CascadeModel:
    """Load the cascade's members with ``loader`` (on ``device``) and check they are the ones its band was fitted on.

    Raises:
        ModelError: the card names no members or band, a member is missing, or a member was retrained after
            the cascade was fitted.
    """
    try:
        specs = {spec["stage"]: spec for spec in card["members"]}
        band = [float(v) for v in card["band"]]
        cheap_spec, exp_spec = specs["cheap"], specs["expensive"]
    except (KeyError, TypeError, ValueError):
        raise ModelError(
            f"classifier card {model_dir(name) / 'card.json'} names no cheap and expensive member and band; "
            f"{retrain_hint(name)}"
        ) from None
    members = []
    for spec in (cheap_spec, exp_spec):
        member = loader(spec["name"], device)
        check_pinned("cascade", name, member, spec)
        members.append(member)
    return CascadeModel(name, card, members[0], members[1], band)


def _combined(cheap: np.ndarray, expensive: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    esc = (cheap >= lo) & (cheap <= hi)
    return np.where(esc, expensive, cheap), esc


def _row(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "auroc": round(auroc(y.tolist(), p.tolist()), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(y.tolist(), p.tolist(), 0.01), 4),
        "tpr_at_5pct_fpr": round(tpr_at_fpr(y.tolist(), p.tolist(), 0.05), 4),
    }


def choose_band(
    cheap: np.ndarray, expensive: np.ndarray, labels: np.ndarray, budget: float, grid: int
) -> tuple[float, float]:
    """The band ``[lo, hi]`` of cheap calibrated scores that escalates at most ``budget`` of the documents and
    gives the combined score the highest AUROC (ties: TPR at 1% FPR, then the narrower band). Candidate edges
    are the 0, 1/grid, ..., 1 quantiles of ``cheap``; ``budget`` 0 gives an empty band (the cheap member alone).
    """
    edges = sorted({float(v) for v in np.quantile(cheap, np.linspace(0, 1, grid + 1))})
    y = labels.tolist()
    best = (auroc(y, cheap.tolist()), tpr_at_fpr(y, cheap.tolist(), 0.01), 0.0)  # the empty band: cheap alone
    band = (2.0, 2.0)  # above every probability: nothing escalates
    for i, lo in enumerate(edges):
        for hi in edges[i:]:
            p, esc = _combined(cheap, expensive, lo, hi)
            if esc.mean() > budget + 1e-12:
                break  # wider bands (higher hi) escalate more
            if not esc.any():
                continue  # escalates nothing: the cheap member alone, which the empty band already is
            key = (auroc(y, p.tolist()), tpr_at_fpr(y, p.tolist(), 0.01), -(hi - lo))
            if key > best:
                best, band = key, (lo, hi)
    return band


def train(
    name: str,
    rows: list[dict[str, Any]],
    data: Path,
    folder: Path,
    loader: Loader,
    *,
    device: str = "auto",
) -> dict[str, Any]:
    """Choose the band of ``name`` over the members its card names (or :data:`CASCADE_MEMBERS` for a new
    cascade), record the cost/quality curve, calibrate and write the card; return it.

    Both members score every validation text once (the expensive member's cost: one transformer pass over the
    validation windows); each band is then a recombination of those scores.

    Raises:
        ModelError: a member is missing.
    """
    try:
        old = load_card(name)
        names = {spec["stage"]: spec["name"] for spec in old["members"]}
        params = {**CASCADE_PARAMS, **old.get("cascade_params", {})}
    except (ModelError, KeyError, TypeError):
        names, params = dict(CASCADE_MEMBERS), dict(CASCADE_PARAMS)
    cheap, exp = loader(names["cheap"], device), loader(names["expensive"], device)
    _, val_rows = split_rows(rows)
    labels, docs, kept = prepare(val_rows)
    model = CascadeModel(name, {}, cheap, exp, (2.0, 2.0))
    p_cheap = model.cheap_probs(docs)
    p_exp = model.expensive_probs(docs, p_cheap)
    y = np.asarray(labels, dtype=bool)
    cal = np.asarray(calibration_rows([val_rows[i] for i in kept]), dtype=bool)
    held = ~cal
    grid = int(params["band_grid"])
    curve = []
    for budget in params["curve_budgets"]:
        lo, hi = choose_band(p_cheap[cal], p_exp[cal], y[cal], float(budget), grid)
        p, esc = _combined(p_cheap, p_exp, lo, hi)
        curve.append(
            {
                "budget": budget,
                "band": [round(lo, 6), round(hi, 6)] if lo <= 1 else None,
                "escalated_calibration_half": round(float(esc[cal].mean()), 4),
                "escalated_heldout_half": round(float(esc[held].mean()), 4),
                "heldout_half": _row(y[held], p[held]),
            }
        )
    model.lo, model.hi = choose_band(p_cheap[cal], p_exp[cal], y[cal], float(params["max_escalated_share"]), grid)
    raw, esc = _combined(p_cheap, p_exp, model.lo, model.hi)
    extra: dict[str, Any] = {
        "members": [{"stage": "cheap", **_pin(cheap)}, {"stage": "expensive", **_pin(exp)}],
        "band": [model.lo, model.hi],
        "cascade_params": params,
        "escalated_validation_share": round(float(esc.mean()), 4),
        "band_curve": curve,
        "heldout_half": {
            name: _row(y[held], raw[held]),
            cheap.name: _row(y[held], p_cheap[held]),
            exp.name: _row(y[held], p_exp[held]),
        },
        "band_fit_on": "even-hash half of validation groups (the members' calibration half); measured on the other",
    }
    return finish_card(model, rows, val_rows, data, folder, extra=extra, val_raw=raw.tolist())
