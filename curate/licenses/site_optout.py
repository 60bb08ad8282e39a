"""Site-level opt-out signals from snapshot folders: robots.txt (AI crawlers, Content-Signal, Content-Usage,
DisallowAITraining) and TDMRep ``/.well-known/tdmrep.json``.

A snapshot folder holds one file per host: ``<host>.txt`` (the robots.txt body) or ``<host>.json`` (the
tdmrep.json body), all fetched on the recipe's ``optout.snapshot_date``. These signals are *retroactive*: the
snapshot usually postdates the capture, so they are stored apart from the signals found in the record itself
(``documents.optout_site`` vs ``documents.optout``), each evidence row dated with the snapshot date.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from curate.licenses.tagger import OptOut, ai_agent_names

_EXTRA_LINE = re.compile(
    r"^\s*(content-signal|content-usage|disallowaitraining)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _pattern_matches(pattern: str, path: str) -> bool:
    """robots-style path pattern: prefix match, ``*`` any characters, ``$`` end."""
    regex = "^" + re.escape(pattern).replace(r"\*", ".*")
    if regex.endswith(r"\$"):
        regex = regex[:-2] + "$"
    return re.match(regex, path) is not None


class SiteSignals:
    """Looks up a URL's site-level opt-outs in robots.txt / tdmrep.json snapshot folders (either may be None)."""

    def __init__(self, robots_dir: Path | None, tdmrep_dir: Path | None) -> None:
        self.robots_dir = robots_dir
        self.tdmrep_dir = tdmrep_dir

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one instance per task; the cache is the point
    def _robots(self, host: str) -> tuple[Any, str] | None:
        if self.robots_dir is None:
            return None
        for name in (host, host.removeprefix("www.")):
            f = self.robots_dir / f"{name}.txt"
            if f.is_file():
                from protego import Protego

                body = f.read_text(encoding="utf-8", errors="replace")
                return Protego.parse(body), body
        return None

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def _tdmrep(self, host: str) -> list[dict[str, Any]] | None:
        if self.tdmrep_dir is None:
            return None
        for name in (host, host.removeprefix("www.")):
            f = self.tdmrep_dir / f"{name}.json"
            if f.is_file():
                try:
                    data = json.loads(f.read_text(encoding="utf-8"))
                except ValueError:
                    return None
                return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else None
        return None

    def checked(self, url: str | None) -> bool:
        """Whether a snapshot exists for the URL's host (so a False verdict means 'checked, none found')."""
        host = _host(url or "")
        return bool(host) and (self._robots(host) is not None or self._tdmrep(host) is not None)

    def for_url(self, url: str | None) -> list[OptOut]:
        """Opt-out signals that apply to ``url``; empty when none or no snapshot."""
        host = _host(url or "")
        if not host:
            return []
        out: list[OptOut] = []
        robots = self._robots(host)
        if robots is not None:
            parser, body = robots
            if not parser.can_fetch(url, "*"):
                out.append(OptOut("robots-txt", "Disallow for *", None))
            else:
                out.extend(
                    OptOut("robots-txt", f"Disallow for {agent}", agent)
                    for agent in ai_agent_names()
                    if not parser.can_fetch(url, agent)
                )
            for key, value in _EXTRA_LINE.findall(body):
                k = key.lower()
                if k == "content-signal" and re.search(r"ai-train\s*=\s*no", value, re.I):
                    out.append(OptOut("content-signal", f"{key}: {value}", None))
                elif k == "content-usage" and re.search(r"(?:train-ai|ai-use)\s*=\s*n\b", value, re.I):
                    prefix = value.split()[0] if value.split() and value.split()[0].startswith("/") else "/"
                    if _pattern_matches(prefix, _path(url or "")):
                        out.append(OptOut("content-usage", f"{key}: {value}", None))
                elif k == "disallowaitraining" and _pattern_matches(value.split()[0], _path(url or "")):
                    out.append(OptOut("disallow-ai-training", f"{key}: {value}", None))
        rules = self._tdmrep(host)
        for rule in rules or ():
            if _pattern_matches(str(rule.get("location", "")), _path(url or "")):
                if str(rule.get("tdm-reservation")) == "1":
                    out.append(OptOut("tdmrep-json", json.dumps(rule, sort_keys=True), None))
                break  # the first matching rule decides
        return out
