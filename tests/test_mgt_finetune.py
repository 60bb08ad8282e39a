"""Fine-tuning the encoder's top layers from cached hidden states (curate/score/finetune.py, measured by
benchmarks/mgt_finetune.py): the cache gives what a full forward pass gives, only the copied top layers and the
head change, the same seed gives the same model, and early stopping keeps its best state. On a tiny slice of the
in-repo subset (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curate.errors import ModelError
from curate.score.labelled import prepare
from curate.score.model import spread
from curate.score.text import windows

from conftest import mgt_rows

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # a minute and more on a busy 2-core host (five encoder passes, three fine-tunes)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """16 windows (8 human, 8 machine) of the subset, the all-layer encoder (64 tokens, to keep it short) and
    their cache cut at layer 5."""
    from curate.score.encoder import MiniLMEncoder
    from curate.score.finetune import build_cache

    labels, docs, _ = prepare(mgt_rows())
    texts: list[str] = []
    ys: list[bool] = []
    for y, words in zip(labels, docs, strict=True):
        if ys.count(y) < 8:
            text = " ".join(spread(list(windows(words)), 1)[0])
            if text not in texts:
                texts.append(text)
                ys.append(y)
    assert len(texts) == 16
    encoder = MiniLMEncoder("cpu", layers=range(7), max_tokens=64, batch_size=8)
    cache = build_cache(encoder, texts, 5, tmp_path_factory.mktemp("ft") / "cache")
    return {"encoder": encoder, "cache": cache, "texts": texts, "y": np.asarray(ys)}


def test_cache_is_the_full_forward_pass(setup: dict[str, Any]) -> None:
    from curate.score.finetune import masked_mean, run_layers

    encoder, cache, texts = setup["encoder"], setup["cache"], setup["texts"]
    assert len(cache) == len(texts)
    np.testing.assert_allclose(cache.pooled, encoder.features(texts), atol=1e-5)
    ids = torch.tensor([encoder.tokenizer.encode(texts[0]).ids])
    with torch.inference_mode():
        states = encoder.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    cut = cache.hidden[cache.offsets[0] : cache.offsets[1]].astype(np.float32)
    np.testing.assert_allclose(cut, states.hidden_states[5][0].numpy(), atol=2e-2)
    # the top layer run on the cached (float16, padded) states gives the full pass's last-layer means
    rows = list(range(len(texts)))
    h, mask = cache.batch(rows)
    with torch.inference_mode():
        top = masked_mean(run_layers(encoder.model.encoder.layer[5:], h, mask)[-1], mask).numpy()
    np.testing.assert_allclose(top, cache.pooled[:, 6 * 384 :], atol=5e-2)
    assert np.abs(top - cache.pooled[:, 6 * 384 :]).mean() < 5e-3
    with pytest.raises(ModelError, match="not in the fine-tuning cache"):
        cache.rows_of(["a window nobody cached"])


def _tune(setup: dict[str, Any], **kw: Any) -> tuple[Any, dict[str, Any]]:
    from curate.score.finetune import FineTuneConfig, fine_tune

    rows = np.arange(len(setup["texts"]))
    config = FineTuneConfig(**{"k": 1, "batch": 4, "max_steps": 3, "eval_every": 0, "lr_layers": 1e-3, **kw})
    y = setup["y"]
    return fine_tune(
        setup["encoder"], setup["cache"], rows, y, stop_rows=rows, stop_owner=rows, stop_labels=y, config=config
    )


def test_fine_tune_changes_only_the_copied_top_and_is_deterministic(setup: dict[str, Any]) -> None:
    encoder = setup["encoder"]
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    first, summary = _tune(setup)
    assert summary["steps"] == 3
    after = encoder.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the encoder itself must stay frozen"
    tuned = first.layers.state_dict()
    original = encoder.model.encoder.layer[5].state_dict()
    changed = [k for k in tuned if not torch.equal(tuned[k], original[k.split(".", 1)[1]])]
    assert any("attention" in k for k in changed) and any("output.dense" in k for k in changed)
    rows = list(range(len(setup["texts"])))
    second, _ = _tune(setup)
    np.testing.assert_array_equal(first.window_logits(setup["cache"], rows), second.window_logits(setup["cache"], rows))
    other, _ = _tune(setup, seed=1)
    assert not np.array_equal(first.window_logits(setup["cache"], rows), other.window_logits(setup["cache"], rows))


def test_early_stopping_keeps_the_best_state(setup: dict[str, Any]) -> None:
    from curate.score.finetune import doc_auroc

    model, summary = _tune(setup, eval_every=1, patience=2, max_steps=4, lr_layers=3e-3, lr_head=3e-2)
    seen = [h["stop_auroc"] for h in summary["history"]]
    assert summary["history"][0]["step"] == 0 and summary["stop_auroc"] == max(seen)
    rows = np.arange(len(setup["texts"]))
    kept = doc_auroc(model.window_logits(setup["cache"], rows), rows, setup["y"])
    assert round(kept, 5) == summary["stop_auroc"]


def test_k_must_match_the_cache(setup: dict[str, Any]) -> None:
    with pytest.raises(ModelError, match="needs a cache cut at layer 4"):
        _tune(setup, k=2)


def test_cache_is_reused(setup: dict[str, Any], tmp_path: Path) -> None:
    from curate.score.finetune import build_cache

    folder = tmp_path / "c"
    texts = setup["texts"][:3]
    first = build_cache(setup["encoder"], texts, 5, folder)
    stamp = (folder / "hidden.npy").stat().st_mtime_ns
    again = build_cache(setup["encoder"], texts, 5, folder)
    assert (folder / "hidden.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.pooled, again.pooled)
    other = build_cache(setup["encoder"], texts[:2], 5, folder)
    assert len(other) == 2
