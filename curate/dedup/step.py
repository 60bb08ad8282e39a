"""The signature step of ingest: exact-dedup hash, MinHash signature and LSH band keys of each text."""

from __future__ import annotations

from typing import Any

from datatrove.data import Document

from curate.dedup.minhash import band_keys, text_hash
from curate.recipe import Recipe
from curate.schema import Meta
from curate.steps import CurateStep


class SignatureStep(CurateStep):
    """Exact-dedup hash, MinHash signature and LSH band keys of the text."""

    name = "dedup signature"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.params = recipe.dedup_params
        self._hasher: Any = None

    def process(self, doc: Document) -> None:
        """Hash, sign and band documents with text."""

        if not doc.text:
            return
        p = self.params
        if self._hasher is None:
            self._hasher = p.hasher()
        doc.metadata[Meta.TEXT_HASH] = text_hash(doc.text)
        sig = self._hasher.signature(doc.text, doc.metadata.get(Meta.LANGUAGE))
        if sig is not None:
            doc.metadata[Meta.MINHASH] = sig.tolist()
            doc.metadata[Meta.BANDS] = band_keys(sig, p.bands, p.rows)
