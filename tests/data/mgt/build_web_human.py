"""Build ``web-human.jsonl.gz``: real human web pages proven to exist before the cutoff, as labelled MGT text.

    python tests/data/mgt/build_web_human.py [--trafilatura GITDIR] [--readability GITDIR] [--out FILE]

The pages are the HTML test fixtures of two Apache-2.0 repositories, read from their git history (bare mirrors
are enough): trafilatura's ``tests/eval/*.html`` and ``tests/cache/*.html``, and Mozilla Readability's
``test/test-pages/*/source.html``. A page is kept only when the commit that first added its path is dated before
the cutoff (2022-11-30), and its bytes are read **at that commit**, so every text is proven to have existed
before the cutoff (what a model could not have written at scale). Files named by a 32-hex hash (the ScrapingHub
article-extraction benchmark, vendored into trafilatura's tests) are never used.

Each page goes through the pipeline's own steps and settings: charset decoding (:func:`curate.read.charset.
decode_payload`), main-text extraction (:func:`curate.extract.extract_text`, trafilatura with the pipeline's
settings), language id (:func:`curate.extract.detect_language`); only English texts that the MGT models would
score (:func:`curate.score.text.unscorable`, 30 words or more) and that pass the default ``min_chars`` are kept,
cut to their first ``MAX_WORDS`` words, deduplicated by text. Each row carries its provenance (repository,
path, commit, date added, URL when known) and its ``site`` (the registered domain, from the URL; from the file
name when the fixture has no URL). Every site goes to exactly one ``split`` by a stable hash of the site:
``train`` (half), ``reference`` (a quarter: shipped reference distributions) and ``eval`` (a quarter: the
web false-positive gate, never trained or calibrated on).

Deterministic: the same mirrors give a byte-identical file (no time stamps, sorted rows).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curate.extract import detect_language, extract_text
from curate.read.charset import decode_payload
from curate.score.text import normalise, unscorable

HERE = Path(__file__).resolve().parent
OUT = HERE / "web-human.jsonl.gz"
MIRRORS = Path("/work/.mirror")
CUTOFF = datetime(2022, 11, 30, tzinfo=UTC)
MAX_WORDS = 600  # texts are cut to their first MAX_WORDS words (whitespace-separated), paragraphs kept
MIN_CHARS = 200  # the default recipe's [extract] min_chars
HASH_NAME = re.compile(r"[0-9a-f]{32}\.html")  # ScrapingHub benchmark pages: excluded, never read
SPLITS = ("train", "train", "reference", "eval")  # by sha1(site) % 4


def git(gitdir: Path, *args: str) -> bytes:
    """Output of ``git -C gitdir args`` (raises on failure)."""
    return subprocess.run(["git", "-C", str(gitdir), *args], check=True, capture_output=True).stdout


def first_added(gitdir: Path, paths: list[str]) -> dict[str, tuple[str, str]]:
    """Path → (commit, ISO date) of the earliest commit that added it (whole history, renames counted as adds)."""
    log = git(gitdir, "log", "-z", "--no-renames", "--diff-filter=A", "--format=@@%H %cI", "--name-only", "--", *paths)
    added: dict[str, tuple[str, str]] = {}
    commit = date = ""
    for raw in log.decode().split("\0"):
        field = raw.strip("\n")
        if field.startswith("@@"):
            head, _, field = field.partition("\n")
            commit, date = head[2:].split()
        if field:
            added[field] = (commit, date)  # log runs newest first: the last seen is the earliest
    return added


def split_of(site: str) -> str:
    """The split every page of ``site`` belongs to (stable: sha1 of the site)."""
    return SPLITS[int(hashlib.sha1(f"web-human:{site}".encode()).hexdigest(), 16) % len(SPLITS)]


def registered_domain(url: str) -> str | None:
    """The registered domain of ``url`` (public-suffix list of the ``tld`` package), or None."""
    from tld import get_fld

    found = get_fld(url, fail_silently=True)
    return str(found).lower() if found else None


_CANONICAL = re.compile(
    r"""<link[^>]+rel=["']canonical["'][^>]*href=["'](https?://[^"']+)["']"""
    r"""|<meta[^>]+property=["']og:url["'][^>]*content=["'](https?://[^"']+)["']""",
    re.IGNORECASE,
)


def page_url(html: str) -> str | None:
    """The URL a page states for itself (``<link rel=canonical>`` or ``og:url``), or None."""
    m = _CANONICAL.search(html)
    return (m.group(1) or m.group(2)) if m else None


def truncate(text: str, max_words: int = MAX_WORDS) -> str:
    """``text`` up to the end of its ``max_words``-th whitespace-separated word."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    return text if len(ends) <= max_words else text[: ends[max_words - 1]]


def candidates(trafilatura: Path, readability: Path) -> list[dict[str, Any]]:
    """Every fixture page of both repositories with its provenance (no text yet)."""
    out: list[dict[str, Any]] = []
    urls = {v["file"]: u for u, v in json.loads(git(trafilatura, "show", "HEAD:tests/evaldata.json")).items()}
    t_paths = [
        p
        for p in git(trafilatura, "ls-tree", "-z", "--name-only", "HEAD", "tests/eval/", "tests/cache/")
        .decode()
        .split("\0")
        if p.endswith(".html") and not HASH_NAME.fullmatch(p.rsplit("/", 1)[1])
    ]
    for path, (commit, date) in sorted(first_added(trafilatura, t_paths).items()):
        if path in t_paths:
            name = path.rsplit("/", 1)[1]
            out.append({"repo": "adbar/trafilatura", "gitdir": trafilatura, "path": path, "commit": commit,
                        "added": date, "url": urls.get(name), "name": name})  # fmt: skip
    r_paths = [
        p
        for p in git(readability, "ls-tree", "-z", "-r", "--name-only", "HEAD", "test/test-pages/").decode().split("\0")
        if p.endswith("/source.html")
    ]
    for path, (commit, date) in sorted(first_added(readability, r_paths).items()):
        if path in r_paths:
            out.append({"repo": "mozilla/readability", "gitdir": readability, "path": path, "commit": commit,
                        "added": date, "url": None, "name": path.split("/")[-2]})  # fmt: skip
    return out


def site_of(c: dict[str, Any]) -> str:
    """Registered domain of the page's URL; without one, the fixture's name (trafilatura names files after their
    host, e.g. ``blog.python.org.html``; Readability names folders after the site, e.g. ``ars-1``)."""
    if c["url"] and (dom := registered_domain(c["url"])):
        return dom
    if c["repo"] == "adbar/trafilatura":
        stem = c["name"].removesuffix(".html")
        for cut in range(stem.count(".") + 1):  # the longest dotted prefix that is a registered domain
            host = stem.rsplit(".", cut)[0] if cut else stem
            if dom := registered_domain(f"http://{host.split('-')[0]}/"):
                return dom
        return f"trafilatura:{stem}"
    return "readability:" + re.sub(r"-\d+$", "", c["name"])


def build(trafilatura: Path, readability: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(rows, counts of pages dropped per reason) from the two mirrors."""
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    seen: set[str] = set()

    def drop(why: str) -> None:
        dropped[why] = dropped.get(why, 0) + 1

    for c in candidates(trafilatura, readability):
        if datetime.fromisoformat(c["added"]).astimezone(UTC) >= CUTOFF:
            drop("added_after_cutoff")
            continue
        payload = git(c["gitdir"], "show", f"{c['commit']}:{c['path']}")
        html = decode_payload(payload, None).text
        if not html:
            drop("undecodable")
            continue
        url = c["url"] or page_url(html)
        try:
            text = extract_text(html, "trafilatura", url)
        except Exception:  # noqa: BLE001 - a page the extractor fails on is not kept, as in the pipeline
            drop("extract_error")
            continue
        language = detect_language(text)[0]
        if language != "en":
            drop("not_english")
            continue
        if len(text) < MIN_CHARS or unscorable(normalise(text)) is not None:
            drop("too_short")
            continue
        text = truncate(text)
        key = hashlib.sha1(" ".join(text.split()).encode()).hexdigest()
        if key in seen:
            drop("duplicate_text")
            continue
        seen.add(key)
        site = site_of({**c, "url": url})
        rows.append(
            {
                "id": "web-human:" + hashlib.sha1(f"{c['repo']}:{c['path']}".encode()).hexdigest()[:16],
                "text": text,
                "label": "human",
                "generator": "human",
                "domain": "web",
                "site": site,
                "split": split_of(site),
                "group": f"web:{site}",
                "source": c["repo"],
                "path": c["path"],
                "commit": c["commit"],
                "added": c["added"],
                "url": url,
                "language": language,
                "license": "page owners' (test fixture of an Apache-2.0 repository)",
            }
        )
    rows.sort(key=lambda r: r["id"])
    return rows, dropped


def jsonl_gz(rows: list[dict[str, Any]]) -> bytes:
    """Gzipped JSONL of ``rows`` with no file name or time stamp in the header (byte-reproducible)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, filename="", mtime=0) as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode())
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trafilatura", type=Path, default=MIRRORS / "adbar+trafilatura" / "repo")
    ap.add_argument("--readability", type=Path, default=MIRRORS / "mozilla+readability" / "repo")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows, dropped = build(args.trafilatura, args.readability)
    args.out.write_bytes(jsonl_gz(rows))
    splits = {s: sum(r["split"] == s for r in rows) for s in sorted(set(SPLITS))}
    sites = {s: len({r["site"] for r in rows if r["split"] == s}) for s in sorted(set(SPLITS))}
    print(f"{args.out}: {len(rows)} pages, {len({r['site'] for r in rows})} sites; pages {splits}; sites {sites}")
    print(f"dropped: {dict(sorted(dropped.items()))}")
    print("heads:", {git(p, "rev-parse", "HEAD").decode().strip() for p in (args.trafilatura, args.readability)})


if __name__ == "__main__":
    main()
