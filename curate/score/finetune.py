"""Fine-tuning the top layers of the MiniLM encoder on cached hidden states (measured by
``benchmarks/mgt_finetune.py``; docs/mgt.md, "Fine-tuning the encoder's top layer").

With the bottom ``6 - k`` layers of all-MiniLM-L6-v2 frozen, their output for a window never changes, so it is
computed once (:func:`build_cache`): per window, the hidden states that leave layer ``6 - k`` (float16, ragged, in
a numpy memmap) and the attention-masked means of all seven hidden states (exactly the features of
``mgt-minilm-v1``, float32). Every epoch and every leave-one-out fold then runs only copies of the top ``k``
layers (:class:`TunedTop`) on those states. The head sees what ``mgt-minilm-v1``'s head sees, a logistic
regression over the standardised means of layers 0..6, except that the means of the top ``k`` layers now come
from the fine-tuned copies; it starts from ``mgt-minilm-v1``'s recipe fitted on the same rows
(:func:`curate.score.minilm_model.fit_head`), so step 0 is the frozen model and the only change is the fine-tuning.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ModelError
from curate.score.encoder import MiniLMEncoder, masked_mean, padded_batches
from curate.score.metrics import auroc, doc_means
from curate.score.minilm_model import fit_head

HIDDEN = 384
N_LAYERS = 6


@dataclass
class WindowCache:
    """Frozen-encoder outputs of a list of window texts (see the module docstring).

    ``hidden[offsets[i]:offsets[i + 1]]`` are window ``i``'s token states leaving layer ``cut`` (float16,
    [CLS] and [SEP] included, no padding); ``pooled[i]`` its mean of every hidden state 0..6 (7 x 384, float32).
    ``index`` maps a window text to its row.
    """

    cut: int
    offsets: np.ndarray
    hidden: np.ndarray
    pooled: np.ndarray
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows_of(self, texts: Sequence[str]) -> np.ndarray:
        """Cache rows of ``texts``.

        Raises:
            ModelError: a text that is not in the cache.
        """
        try:
            return np.asarray([self.index[t] for t in texts], dtype=np.int64)
        except KeyError:
            raise ModelError("a window is not in the fine-tuning cache: build it over every text to score") from None

    def batch(self, rows: Sequence[int]) -> tuple[Any, Any]:
        """(float32 hidden states padded to the longest window, attention mask) of cache ``rows``, as tensors."""
        import torch

        lengths = [int(self.offsets[r + 1] - self.offsets[r]) for r in rows]
        width = max(lengths)
        h = np.zeros((len(rows), width, HIDDEN), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, (r, n) in enumerate(zip(rows, lengths, strict=True)):
            h[j, :n] = self.hidden[self.offsets[r] : self.offsets[r] + n]
            mask[j, :n] = 1
        return torch.from_numpy(h), torch.from_numpy(mask)


def _digest(texts: Sequence[str], cut: int, encoder: MiniLMEncoder) -> str:
    h = hashlib.sha256(f"{cut}\0{encoder.name}\0".encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    return h.hexdigest()


def build_cache(
    encoder: MiniLMEncoder,
    texts: Sequence[str],
    cut: int,
    folder: Path,
    progress: Callable[[int, int], None] | None = None,
) -> WindowCache:
    """Run the frozen encoder once over the distinct ``texts`` and keep what fine-tuning needs (class docstring),
    in ``folder`` (``hidden.npy``, ``pooled.npy``, ``offsets.npy``, ``meta.json``).

    A folder that already holds the cache of the same texts, ``cut`` and encoder is reused as it is.
    ``encoder`` must pool all seven hidden states (layers 0..6) on torch fp32, as ``mgt-minilm-v1``'s does.
    ``progress(done, total)`` is called after each batch.
    """
    import torch

    if encoder.layers != tuple(range(N_LAYERS + 1)):
        raise ModelError(f"the cache needs the means of layers 0..{N_LAYERS}, not {list(encoder.layers)}")
    if not 1 <= cut < N_LAYERS:
        raise ModelError(f"cut must be in 1..{N_LAYERS - 1}, not {cut}")
    distinct = list(dict.fromkeys(texts))
    digest = _digest(distinct, cut, encoder)
    meta_file = folder / "meta.json"
    if meta_file.is_file() and json.loads(meta_file.read_text())["digest"] == digest:
        return load_cache(folder, distinct)
    folder.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)
    counts = encoder.token_counts(distinct)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    hidden = np.lib.format.open_memmap(
        folder / "hidden.npy", mode="w+", dtype=np.float16, shape=(int(offsets[-1]), HIDDEN)
    )
    pooled = np.zeros((len(distinct), HIDDEN * (N_LAYERS + 1)), dtype=np.float32)
    done = 0
    for idx, ids, mask in padded_batches(encoder.tokenizer, distinct, encoder.batch_size):
        with torch.inference_mode():
            t_mask = torch.from_numpy(mask)
            states = encoder.model(
                input_ids=torch.from_numpy(ids), attention_mask=t_mask, output_hidden_states=True
            ).hidden_states
            pooled[idx] = torch.cat([masked_mean(s, t_mask) for s in states], dim=1).numpy()
            cut_states = states[cut].numpy().astype(np.float16)
        for row, i in enumerate(idx):
            hidden[offsets[i] : offsets[i + 1]] = cut_states[row, : counts[i]]
        done += len(idx)
        if progress is not None:
            progress(done, len(distinct))
    hidden.flush()
    del hidden
    np.save(folder / "pooled.npy", pooled)
    np.save(folder / "offsets.npy", offsets)
    meta_file.write_text(json.dumps({"digest": digest, "cut": cut, "windows": len(distinct)}) + "\n")
    return load_cache(folder, distinct)


def load_cache(folder: Path, texts: Sequence[str]) -> WindowCache:
    """The cache :func:`build_cache` wrote in ``folder`` for the distinct ``texts`` (in that order)."""
    meta = json.loads((folder / "meta.json").read_text())
    offsets = np.load(folder / "offsets.npy")
    if len(offsets) - 1 != len(texts) or meta["windows"] != len(texts):
        raise ModelError(f"the cache in {folder} holds {meta['windows']} windows, not {len(texts)}")
    return WindowCache(
        cut=int(meta["cut"]),
        offsets=offsets,
        hidden=np.load(folder / "hidden.npy", mmap_mode="r"),
        pooled=np.load(folder / "pooled.npy"),
        index={t: i for i, t in enumerate(texts)},
    )


def additive_mask(mask: Any) -> Any:
    """The (batch, 1, 1, tokens) additive attention mask a BERT layer takes: 0 on tokens, a large negative on padding."""
    import torch

    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def run_layers(layers: Sequence[Any], h: Any, mask: Any) -> list[Any]:
    """The hidden states leaving each of ``layers`` (BERT layers) applied in turn to ``h`` under ``mask``."""
    ext = additive_mask(mask)
    out = []
    for layer in layers:
        h = layer(h, attention_mask=ext)
        h = h[0] if isinstance(h, tuple) else h
        out.append(h)
    return out


@dataclass(frozen=True)
class FineTuneConfig:
    """Settings of one fine-tune (``benchmarks/mgt_finetune.py`` prints them with its results)."""

    k: int = 1  # top layers fine-tuned (the cache must be cut at 6 - k)
    epochs: int = 1
    batch: int = 32
    lr_layers: float = 3e-5
    lr_head: float = 1e-4
    weight_decay: float = 0.01
    l2: float = 3e-4  # of the initial head (mgt-minilm-v1's)
    max_steps: int = 0  # 0: no limit beyond ``epochs``
    eval_every: int = 100  # steps between early-stopping evaluations; 0: none, the last state is kept
    patience: int = 3  # evaluations without a better early-stopping AUROC before stopping
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The settings, for a results file."""
        return asdict(self)


class TunedTop:
    """Fine-tuned copies of the top ``k`` encoder layers plus the linear head (module docstring).

    ``head`` holds numpy tensors like :func:`curate.score.minilm_model.fit_head`'s over the 7 x 384 features
    (``mean``, ``scale``, ``weight``, ``bias``); its standardisation stays fixed and its weights are trained.
    """

    def __init__(self, layers: Any, head: dict[str, np.ndarray], k: int) -> None:
        import torch

        self.k = k
        self.layers = layers
        split = HIDDEN * (N_LAYERS + 1 - k)
        self.split = split
        self.mean = torch.from_numpy(head["mean"].astype(np.float32))
        self.scale = torch.from_numpy(head["scale"].astype(np.float32))
        self.weight = torch.nn.Parameter(torch.from_numpy(head["weight"].astype(np.float32).copy()))
        self.bias = torch.nn.Parameter(torch.from_numpy(head["bias"].astype(np.float32).copy()))
        self.final_state: dict[str, Any] | None = None  # the last training state, when early stopping went back

    def logits(self, cache: WindowCache, rows: Sequence[int]) -> Any:
        """Window logits (a tensor of ``len(rows)``) of cache ``rows``; gradients flow in training mode."""
        import torch

        h, mask = cache.batch(rows)
        tops = run_layers(self.layers, h, mask)
        frozen = torch.from_numpy(cache.pooled[np.asarray(rows)][:, : self.split])
        feats = torch.cat([frozen, *[masked_mean(t, mask) for t in tops]], dim=1)
        return ((feats - self.mean) / self.scale) @ self.weight + self.bias

    def window_logits(self, cache: WindowCache, rows: Sequence[int] | np.ndarray, batch: int = 64) -> np.ndarray:
        """Window logits of cache ``rows`` (evaluation mode, no gradients, batched by length), float64."""
        import torch

        self.layers.eval()
        picked = np.asarray(rows, dtype=np.int64)
        lengths = cache.offsets[picked + 1] - cache.offsets[picked]
        order = np.argsort(lengths, kind="stable")
        out = np.zeros(len(picked), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                part = order[start : start + batch]
                out[part] = self.logits(cache, picked[part].tolist()).double().numpy()
        return out

    def state(self) -> dict[str, Any]:
        """A copy of every trained tensor (for early stopping)."""
        return {
            "layers": copy.deepcopy(self.layers.state_dict()),
            "weight": self.weight.detach().clone(),
            "bias": self.bias.detach().clone(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Go back to a :meth:`state`."""
        import torch

        self.layers.load_state_dict(state["layers"])
        with torch.no_grad():
            self.weight.copy_(state["weight"])
            self.bias.copy_(state["bias"])


def doc_auroc(logits: np.ndarray, owner: np.ndarray, labels: np.ndarray) -> float:
    """AUROC of documents scored by the mean of their windows' logits (``owner``: document of each window)."""
    return auroc(labels.tolist(), doc_means(logits, owner, len(labels)).tolist())


def fine_tune(
    encoder: MiniLMEncoder,
    cache: WindowCache,
    fit_rows: np.ndarray,
    fit_y: np.ndarray,
    *,
    stop_rows: np.ndarray,
    stop_owner: np.ndarray,
    stop_labels: np.ndarray,
    config: FineTuneConfig,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[TunedTop, dict[str, Any]]:
    """Fine-tune copies of ``encoder``'s top ``config.k`` layers and the head on cache rows ``fit_rows`` (labels
    ``fit_y``, is-machine), early-stopped on the document AUROC of ``stop_rows`` (windows of held-out training
    documents: ``stop_owner`` their document, ``stop_labels`` per document); the encoder itself is not changed.

    The head starts as :func:`curate.score.minilm_model.fit_head` on the fit rows' frozen features; the loss is
    class-balanced binary cross-entropy over windows; AdamW with ``lr_layers`` (weight decay) and ``lr_head``;
    batches of windows of similar length in an order drawn from ``seed``, which also seeds dropout
    (``torch.manual_seed``), so the same inputs and settings give the same model on the same machine and thread
    count. The best early-stopping state (step 0 included) is kept (the last one stays in ``final_state``, to
    measure what early stopping did). Returns (the model, a training summary).
    """
    import torch

    if cache.cut != N_LAYERS - config.k:
        raise ModelError(f"k={config.k} needs a cache cut at layer {N_LAYERS - config.k}, not {cache.cut}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head = fit_head(cache.pooled[fit_rows], fit_y, config.l2)
    layers = copy.deepcopy(encoder.model.encoder.layer[N_LAYERS - config.k :]).float()
    for p in layers.parameters():
        p.requires_grad_(True)
    model = TunedTop(layers, head, config.k)
    optimiser = torch.optim.AdamW(
        [
            {"params": list(layers.parameters()), "lr": config.lr_layers, "weight_decay": config.weight_decay},
            {"params": [model.weight, model.bias], "lr": config.lr_head, "weight_decay": 0.0},
        ]
    )
    n_pos = max(int(fit_y.sum()), 1)
    n_neg = max(len(fit_y) - n_pos, 1)
    class_weight = {True: len(fit_y) / (2 * n_pos), False: len(fit_y) / (2 * n_neg)}
    lengths = cache.offsets[fit_rows + 1] - cache.offsets[fit_rows]
    by_length = np.argsort(lengths, kind="stable")
    batches = [by_length[s : s + config.batch] for s in range(0, len(by_length), config.batch)]

    def evaluate() -> float:
        return doc_auroc(model.window_logits(cache, stop_rows), stop_owner, stop_labels)

    history: list[dict[str, Any]] = []
    best, best_state, best_step, since = float("-inf"), model.state(), 0, 0
    step, loss_sum = 0, 0.0

    def check() -> bool:
        """Evaluate, keep the best state; True when patience has run out."""
        nonlocal best, best_state, best_step, since
        value = evaluate()
        history.append({"step": step, "stop_auroc": round(value, 5), "loss": round(loss_sum / max(step, 1), 5)})
        if log is not None:
            log(history[-1])
        if value > best:
            best, best_state, best_step, since = value, model.state(), step, 0
        else:
            since += 1
        return since >= config.patience

    if config.eval_every:
        check()
    done = False
    for _epoch in range(config.epochs):
        for b in rng.permutation(len(batches)):
            rows = fit_rows[batches[b]]
            y_np = fit_y[batches[b]]
            y = torch.from_numpy(y_np.astype(np.float32))
            w = torch.from_numpy(np.where(y_np, class_weight[True], class_weight[False]).astype(np.float32))
            model.layers.train()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model.logits(cache, rows.tolist()), y, weight=w)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            loss_sum += float(loss.detach())
            step += 1
            if config.eval_every and step % config.eval_every == 0 and check():
                done = True
            if done or (config.max_steps and step >= config.max_steps):
                done = True
                break
        if done:
            break
    if config.eval_every:
        if step % config.eval_every != 0:
            check()
        model.final_state = model.state()
        model.restore(best_state)
    model.layers.eval()
    summary = {
        "steps": step,
        "best_step": best_step if config.eval_every else step,
        "stop_auroc": round(best, 5) if config.eval_every else None,
        "loss": round(loss_sum / max(step, 1), 5),
        "history": history,
    }
    return model, summary
