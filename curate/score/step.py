"""The scoring step of ingest: P(model-generated) for every record with text, in batches."""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline

from curate.schema import Meta, ScoreReason
from curate.score.registry import TORCH_KINDS, load_model
from curate.steps import CurateStep, pending


class ScoreStep(CurateStep):
    """P(model-generated) from the recipe's classifier, for every record with text.

    Documents are scored ``batch_docs`` at a time (a transformer embeds all their windows in one
    sorted-by-length pass) and passed on in their input order.
    """

    name = "MGT score"

    def __init__(self, model_name: str, device: str = "auto", batch_docs: int = 64, threads: int = 0) -> None:
        super().__init__()
        self.model_name = model_name
        self.device = device
        self.batch_docs = batch_docs
        self.threads = threads  # torch CPU threads in this task; 0 leaves torch's default

    def process(self, doc: Document) -> None:
        """Score one document (see :meth:`score_batch`)."""
        self.score_batch([doc])

    def score_batch(self, docs: list[Document]) -> None:
        """Score the texts of ``docs``; records without text (or already decided) get ``not_scored``."""

        todo = []
        for doc in docs:
            if doc.text and pending(doc):
                todo.append(doc)
            elif doc.metadata.get(Meta.RECORD_TYPE) is not None:
                doc.metadata[Meta.MGT_REASON] = ScoreReason.NOT_SCORED.value
        if not todo:
            return
        model = load_model(self.model_name, self.device)
        if self.threads and model.kind in TORCH_KINDS:
            import torch

            torch.set_num_threads(self.threads)
        results = model.score_many([d.text for d in todo], [d.metadata.get(Meta.LANGUAGE) for d in todo])
        for doc, (score, reason, n) in zip(todo, results, strict=True):
            doc.metadata.update(
                {
                    Meta.MGT_SCORE: score,
                    Meta.MGT_MODEL: self.model_name,
                    Meta.MGT_WINDOWS: n,
                    Meta.MGT_REASON: reason.value if reason else None,
                }
            )
            self.stat_update("scored" if score is not None else f"unscored_{reason}")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Score in batches of ``batch_docs`` and forward every document in order."""
        batch: list[Document] = []
        for doc in data or ():
            batch.append(doc)
            if len(batch) >= self.batch_docs:
                yield from self._scored(batch)
                batch = []
        yield from self._scored(batch)

    def _scored(self, batch: list[Document]) -> list[Document]:
        if batch:
            with self.track_time(unit="batch"):
                self.score_batch(batch)
        return batch
