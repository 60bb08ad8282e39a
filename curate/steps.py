"""The per-record datatrove steps of stage 1: licence → extract → date → score → signature → decide → write.

Every step passes every document on: a document that an earlier step dropped or quarantined keeps flowing
(with its ``status``/``reason``) so that the shard writer writes exactly one row per input record. A step
only works on documents whose ``status`` is still undecided. Each step counts what it did with datatrove's
``stat_update`` using the same reason codes as the store, so ``stats.json`` reconciles with it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.recipe import Recipe
from curate.schema import (
    DOCUMENT_COLUMNS,
    EVIDENCE_COLUMNS,
    LICENSE_TAGGER_NAME,
    OPTOUT_COLUMNS,
    SHARD_DEDUP_FIELDS,
    Meta,
    Reason,
    ScoreReason,
    Status,
    arrow_schema,
    mark,
)


class ExtractTimeout(Exception):
    """A page took longer than the extraction time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ExtractTimeout` in the block after ``seconds`` (SIGALRM; main thread only, else no limit)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise ExtractTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pending(doc: Document) -> bool:
    """True while no step has decided the document's status."""
    return doc.metadata.get("status") is None


def decide(doc: Document, reason: Reason, detail: str | None = None) -> None:
    """Mark ``doc`` dropped or quarantined for ``reason``."""
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


class LicenseStep(CurateStep):
    """Licence, copyright and opt-out evidence from the raw HTML and HTTP headers (before extraction), and
    site-level opt-outs from the recipe's robots.txt / tdmrep.json snapshots."""

    name = "licence + opt-out evidence"

    def __init__(self, recipe: Recipe | None = None) -> None:
        super().__init__()
        o = recipe.optout if recipe else None
        self.robots_dir = o.robots_dir if o else ""
        self.tdmrep_dir = o.tdmrep_dir if o else ""
        self.snapshot_date = o.snapshot_date if o else ""
        self._site: Any = None

    def _site_signals(self, doc: Document) -> None:
        import datetime as dt
        from pathlib import Path

        from curate.site_optout import SiteSignals

        if self._site is None:
            self._site = SiteSignals(
                Path(self.robots_dir) if self.robots_dir else None, Path(self.tdmrep_dir) if self.tdmrep_dir else None
            )
        url = doc.metadata.get("url")
        if not self._site.checked(url):
            return
        found = self._site.for_url(url)
        doc.metadata["optout_site"] = bool(found)
        when = dt.datetime.combine(dt.date.fromisoformat(self.snapshot_date), dt.time(), tzinfo=dt.UTC)
        doc.metadata.setdefault(Meta.OPTOUT_EVIDENCE, []).extend(
            {**o.__dict__, "source": "site-snapshot", "observed_at": when} for o in found
        )
        if found:
            self.stat_update("optout_site")

    def process(self, doc: Document) -> None:
        """Tag the raw HTML; records without HTML get NULL licence and opt-out (nothing could be checked)."""
        from curate.license_tagger import tag_html

        meta = doc.metadata
        html = meta.get(Meta.HTML)
        headers = meta.pop("_headers", None) or {}
        if (self.robots_dir or self.tdmrep_dir) and meta.get("record_type") is not None:
            self._site_signals(doc)
        if html is None:
            return
        v = tag_html(html, headers)
        meta.update(
            license_spdx=v.spdx_id,
            license_scope=v.scope,
            license_confidence=v.confidence,
            license_conflict=v.conflict,
            license_signals=len(v.evidence),
            license_tagger=LICENSE_TAGGER_NAME,
            license_url=v.licence_url,
            optout=bool(v.optouts),
            **v.attribution,
        )
        meta[Meta.LICENSE_EVIDENCE] = [e.__dict__ for e in v.evidence]
        meta.setdefault(Meta.OPTOUT_EVIDENCE, []).extend({**o.__dict__, "source": "record"} for o in v.optouts)
        if v.spdx_id:
            self.stat_update(f"license_{v.scope}")
        if v.optouts:
            self.stat_update("optout")


class ExtractStep(CurateStep):
    """Main text (trafilatura or resiliparse), language id and page date."""

    name = "extract"

    def __init__(self, extractor: str, page_dates: bool, timeout_s: float = 10.0) -> None:
        super().__init__()
        self.extractor = extractor
        self.page_dates = page_dates
        self.timeout_s = timeout_s

    def process(self, doc: Document) -> None:
        """Replace the raw HTML by the main text; an extractor crash quarantines the record."""
        from curate.extract import detect_language, extract_text, extractor_name, page_date

        meta = doc.metadata
        html = meta.pop(Meta.HTML, None)
        if html is not None and pending(doc):
            meta["extractor"] = extractor_name(self.extractor)
            try:
                with time_limit(self.timeout_s):
                    doc.text = extract_text(html, self.extractor, meta.get("url"))
            except ExtractTimeout:
                decide(doc, Reason.EXTRACT_TIMEOUT, f"over {self.timeout_s}s")
                self.stat_update("dropped_extract_timeout")
                return
            except Exception as e:  # noqa: BLE001 - one page's failure is that page's quarantine row
                decide(doc, Reason.EXTRACT_ERROR, f"{type(e).__name__}: {e}")
                self.stat_update("quarantined_extract_error")
                return
            if self.page_dates:
                meta["page_date"] = page_date(html, meta.get("url"))
        elif meta.get("record_type") == "conversion" and pending(doc):
            meta["extractor"] = "wet-conversion"
        if doc.text:
            meta["text_chars"] = len(doc.text)
            meta["language"], meta["language_score"] = detect_language(doc.text)


class DateStep(CurateStep):
    """Tier from WARC-Date against the recipe's cutoff."""

    name = "date tier"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.cutoff = recipe.cutoff_datetime

    def process(self, doc: Document) -> None:
        """Parse WARC-Date strictly; unknown dates get no tier and a reason."""
        from curate.dating import parse_warc_date, tier_for

        meta = doc.metadata
        if meta.get("record_type") is None:
            return
        captured, reason = parse_warc_date(meta.get("warc_date_raw"))
        tier = tier_for(captured, self.cutoff)
        meta.update(warc_date=captured, tier=tier.value if tier else None, date_reason=reason.value if reason else None)
        self.stat_update(f"tier_{tier.value if tier else 'unknown'}")


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
        from curate.mgt import TORCH_KINDS, load_model

        todo = []
        for doc in docs:
            if doc.text and pending(doc):
                todo.append(doc)
            elif doc.metadata.get("record_type") is not None:
                doc.metadata["mgt_reason"] = ScoreReason.NOT_SCORED.value
        if not todo:
            return
        model = load_model(self.model_name, self.device)
        if self.threads and model.kind in TORCH_KINDS:
            import torch

            torch.set_num_threads(self.threads)
        results = model.score_many([d.text for d in todo], [d.metadata.get("language") for d in todo])
        for doc, (score, reason, n) in zip(todo, results, strict=True):
            doc.metadata.update(
                mgt_score=score, mgt_model=self.model_name, mgt_windows=n, mgt_reason=reason.value if reason else None
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


class SignatureStep(CurateStep):
    """Exact-dedup hash, MinHash signature and LSH band keys of the text."""

    name = "dedup signature"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.params = recipe.dedup_params
        self._hasher: Any = None

    def process(self, doc: Document) -> None:
        """Hash, sign and band documents with text."""
        from curate.dedup import MinHasher, band_keys, text_hash

        if not doc.text:
            return
        p = self.params
        if self._hasher is None:
            self._hasher = MinHasher(p.num_perm, p.ngram, p.seed)
        doc.metadata["text_hash"] = text_hash(doc.text)
        sig = self._hasher.signature(doc.text)
        if sig is not None:
            doc.metadata[Meta.MINHASH] = sig.tolist()
            doc.metadata[Meta.BANDS] = band_keys(sig, p.bands, p.rows)


class DecideStep(CurateStep):
    """Apply the recipe's per-record keep rules to documents still undecided; the MGT rules, licence policy
    and duplicates are decided later, globally, in the store stage."""

    name = "decide"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def reason_for(self, meta: dict[str, Any], text: str) -> Reason | None:
        """The first rule a document breaks, or None when it is kept."""
        r = self.recipe
        if not text:
            return Reason.NO_TEXT
        if len(text) < r.extract.min_chars:
            return Reason.TOO_SHORT
        if r.extract.languages and meta.get("language") not in r.extract.languages:
            return Reason.LANGUAGE_EXCLUDED
        if (r.optout.honour and meta.get("optout")) or (r.optout.honour_site and meta.get("optout_site")):
            return Reason.OPTED_OUT
        if meta.get("tier") is None and not r.score.keep_unknown_date:
            return Reason.DATE_UNKNOWN
        return None  # the MGT rules need the whole run's pre-cutoff reference: the store stage applies them

    def process(self, doc: Document) -> None:
        """Set ``status`` to kept, or dropped with the first rule's reason."""
        if not pending(doc):
            self.stat_update(f"{doc.metadata['status']}_{doc.metadata['reason']}")
            return
        reason = self.reason_for(doc.metadata, doc.text)
        if reason is None:
            doc.metadata["status"] = Status.KEPT.value
            self.stat_update("kept")
        else:
            decide(doc, reason)
            self.stat_update(f"dropped_{reason.value}")


class ShardWriter(PipelineStep):
    """Write one Parquet row per document (plus evidence rows) to ``<work>/{documents,evidence,optout}/<rank>.parquet``."""

    name = "shard writer"
    type = "WRITER"

    def __init__(self, work_dir: str) -> None:
        super().__init__()
        self.work_dir = work_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Consume the documents and write this task's shards."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        doc_rows: list[dict[str, Any]] = []
        ev_rows: list[dict[str, Any]] = []
        opt_rows: list[dict[str, Any]] = []
        names = [c.name for c in DOCUMENT_COLUMNS]
        for doc in data or ():
            meta = doc.metadata
            row = {n: meta.get(n) for n in names}
            row["doc_id"] = meta[Meta.DOC_ID]
            row["text"] = doc.text or None
            row["minhash"] = meta.get(Meta.MINHASH)
            row["bands"] = meta.get(Meta.BANDS)
            doc_rows.append(row)
            for e in meta.get(Meta.LICENSE_EVIDENCE) or ():
                ev_rows.append({"doc_id": row["doc_id"], "tagger": LICENSE_TAGGER_NAME, **e})
            for o in meta.get(Meta.OPTOUT_EVIDENCE) or ():
                opt_rows.append(
                    {"doc_id": row["doc_id"], "observed_at": meta.get("warc_date"), "tagger": LICENSE_TAGGER_NAME, **o}
                )
            self.stat_update("rows")
        shard_schema = arrow_schema(DOCUMENT_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS])
        for sub, rows, schema in (
            ("documents", doc_rows, shard_schema),
            ("evidence", ev_rows, arrow_schema(EVIDENCE_COLUMNS)),
            ("optout", opt_rows, arrow_schema(OPTOUT_COLUMNS)),
        ):
            folder = os.path.join(self.work_dir, sub)
            os.makedirs(folder, exist_ok=True)
            table = pa.Table.from_pylist(rows, schema=schema)
            pq.write_table(table, os.path.join(folder, f"{rank:05d}.parquet"), compression="zstd")
        return
        yield  # a generator that yields nothing: this is the pipeline's last step
