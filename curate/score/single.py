"""Loading a single-model classifier (a fastText or MiniLM kind) by name: what an ensemble holds, and what the
registry loads for every kind but the ensemble."""

from __future__ import annotations

import functools

from curate.errors import ModelError
from curate.score import fasttext_model, minilm_model
from curate.score.model import MgtModel, load_card, model_dir

SINGLE_KINDS = ("fasttext", "minilm")


@functools.cache
def load_single(name: str, device: str = "auto") -> MgtModel:
    """Load ``classifiers/<name>/``, a fasttext or minilm classifier; ``device`` matters to minilm only.

    Raises:
        ModelError: the folder, model file or card is missing or unreadable, or the card names another kind.
        ConfigError: ``device`` is unknown, or ``cuda`` where torch sees no GPU.
    """
    card = load_card(name)
    kind = card.get("kind")
    if kind == "fasttext":
        return fasttext_model.load(name, card)
    if kind == "minilm":
        return minilm_model.load(name, card, device)
    raise ModelError(
        f"classifier card {model_dir(name) / 'card.json'} has kind {kind!r}; expected one of {', '.join(SINGLE_KINDS)}"
    )
