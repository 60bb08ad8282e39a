"""The base of curate's datatrove steps, and the rule they share: every document is passed on.

A document that an earlier step dropped or quarantined keeps flowing (with its ingest reason) so that the
shard writer writes exactly one row per input record; a step only works on documents no earlier step has
decided. Each step counts what it did with datatrove's ``stat_update`` using the store's reason codes, so
``stats.json`` reconciles with the store.
"""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.schema import Meta, Reason, mark


def pending(doc: Document) -> bool:
    """True while no step has found an ingest reason that rules the document out."""
    return doc.metadata.get(Meta.INGEST_REASON) is None


def rule_out(doc: Document, reason: Reason, detail: str | None = None) -> None:
    """Record that ingest found ``reason`` (an ingest reason) in ``doc``; ``curate decide`` sets its status."""
    mark(doc.metadata, reason, detail)


class CurateStep(PipelineStep):
    """Base of curate's steps: ``process(doc)`` runs on every document, then the document is passed on."""

    type = "CURATE"

    def process(self, doc: Document) -> None:  # pragma: no cover - abstract
        """Annotate ``doc`` in place."""
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Process and forward every document."""
        for doc in data or ():
            with self.track_time():
                self.process(doc)
            yield doc
