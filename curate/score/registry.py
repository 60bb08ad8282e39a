"""The classifier registry: which classifiers exist, loading one by name whatever its kind, training one.

The kinds live in ``fasttext_model`` (CPU), ``minilm_model`` (a transformer on CPU or GPU) and
``ensemble_model`` (both, stacked), ``cascade_model`` (the cheap one settles what it is sure of, the
expensive one scores the rest) and ``lexical_model`` (fastText stacked with word-frequency features); this
module is the only one that knows them all.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from curate.errors import ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.score import cascade_model, ensemble_model, fasttext_model, lexical_model, minilm_model
from curate.score.labelled import read_labelled, read_web_human
from curate.score.model import MgtModel, load_card, model_dir
from curate.score.single import load_single


def registry() -> list[dict[str, Any]]:
    """One summary per registered classifier (a folder of ``classifiers/`` with a readable card), by name:
    name, kind, languages, validation AUROC / TPR at 1% FPR / ECE, and (ensembles) the members."""
    out = []
    for folder in sorted(p for p in CLASSIFIERS_DIR.iterdir() if (p / "card.json").is_file()):
        try:
            card = load_card(folder.name)
        except ModelError:
            continue
        v = card.get("validation", {})
        out.append(
            {
                "name": folder.name,
                "kind": card.get("kind"),
                "languages": card.get("languages"),
                "auroc": v.get("auroc"),
                "tpr_at_1pct_fpr": v.get("tpr_at_1pct_fpr"),
                "ece": v.get("ece"),
                "members": [m["name"] for m in card.get("members", [])],
            }
        )
    return out


KINDS = ("fasttext", "minilm", "ensemble", "cascade", "lexical")


# kinds that run torch: their numbers depend on the device and its threads
TORCH_KINDS = ("minilm", "ensemble", "cascade")


def kind_for(name: str, kind: str | None = None) -> str:
    """The model kind of ``name``: ``kind`` when given, else the kind its name says (``mgt-minilm-v1`` → minilm).

    Raises:
        ModelError: no kind given and none in the name.
    """
    if kind is not None:
        if kind not in KINDS:
            raise ModelError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return kind
    for k in KINDS:
        if k in name:
            return k
    raise ModelError(f"cannot tell the kind of {name!r} from its name: pass --kind ({', '.join(KINDS)})")


@functools.cache
def load_model(name: str, device: str = "auto") -> MgtModel:
    """Load ``classifiers/<name>/`` (any kind); ``device`` matters to transformer kinds only.

    Raises:
        ModelError: the folder, model file or card is missing or unreadable, with the command to retrain.
        ConfigError: ``device`` is unknown, or ``cuda`` where torch sees no GPU.
    """
    card = load_card(name)
    if card.get("kind") == "ensemble":
        return ensemble_model.load(name, card, device)
    if card.get("kind") == "cascade":
        return cascade_model.load(name, card, device, load_model)
    if card.get("kind") == "lexical":
        return lexical_model.load(name, card)
    return load_single(name, device)


def train(
    name: str,
    data: Path,
    out_dir: Path | None = None,
    *,
    kind: str | None = None,
    leave_one_out_tables: bool = False,
    device: str = "auto",
    human_web: Path | None = None,
    rule: tuple[float, float] = (0.5, 0.95),
) -> dict[str, Any]:
    """Train classifier ``name`` on labelled JSONL ``data``; write its artefacts and card; return the card.

    The split is grouped (``group`` field); the kind comes from ``kind`` or the name. An ensemble is fitted
    on top of its members as registered in ``classifiers/``. ``human_web``: real pre-cutoff human web pages
    (``tests/data/mgt/web-human.jsonl.gz``, with ``site`` and ``split``) for the balanced web recipe, its web
    calibration and the card's out-of-distribution gate, measured at ``rule`` = (probability threshold,
    reference quantile); fasttext and lexical kinds only (the lexical kind trains on the labelled rows alone and
    uses the pages for its web calibration and gate).

    Raises:
        ModelError: unreadable data, unknown kind, ``human_web`` with a kind other than fasttext or lexical, or
            (ensemble) a missing member.
    """
    rows = read_labelled(data)
    folder = out_dir or model_dir(name)
    k = kind_for(name, kind)
    web = read_web_human(human_web) if human_web is not None else None
    if web is not None and k not in ("fasttext", "lexical"):
        raise ModelError(f"--human-web trains the fasttext and lexical kinds only; {name!r} is {k}")
    if k == "fasttext":
        card = fasttext_model.train(
            name,
            rows,
            data,
            folder,
            leave_one_out_tables=leave_one_out_tables,
            web=web,
            web_path=human_web,
            rule=rule,
        )
    elif k == "minilm":
        card = minilm_model.train(name, rows, data, folder, leave_one_out_tables=leave_one_out_tables, device=device)
    elif k == "lexical":
        card = lexical_model.train(
            name, rows, data, folder, web=web, web_path=human_web, rule=rule, folds=leave_one_out_tables
        )
    elif k == "cascade":
        card = cascade_model.train(name, rows, data, folder, load_model, device=device)
    else:
        card = ensemble_model.train(name, rows, data, folder, device=device, leave_one_out_tables=leave_one_out_tables)
    forget_loaded()  # a loaded model of this name is stale now
    return card


def forget_loaded() -> None:
    """Drop every loaded classifier, so the next load reads ``classifiers/`` again (after retraining)."""
    load_model.cache_clear()
    load_single.cache_clear()
