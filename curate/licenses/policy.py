"""Licence inclusion policies (data in ``licenses/policies.toml``) and the domain review file.

A policy says which kept documents a mix may contain, judged on the page-licence verdict: whether a licence
is required, which scopes count, whether NC/ND or non-Open-Definition licences are excluded, whether
conflicting signals are tolerated. Documents a policy excludes are dropped with reason ``license_policy``.
Under conflict the policy is conservative: an NC/ND licence that any page signal claims excludes the page from
a policy that excludes NC/ND, whichever licence the verdict shows.

A domain review file (CSV: ``domain,verdict,license_spdx,reviewer,date,note``) records human decisions per
domain (``accept``, ``reject``, ``note``); they override page-level verdicts on the next run and are stored as
``domain-review`` evidence rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.licenses.spdx import License, license_by_spdx
from curate.resources import LICENSES_DIR
from curate.schema import Status

POLICIES_FILE = LICENSES_DIR / "policies.toml"


@dataclass(frozen=True)
class Policy:
    """An inclusion policy; see ``licenses/policies.toml`` for the shipped ones."""

    name: str
    description: str
    require_license: bool = False
    scopes: tuple[str, ...] = ("page",)
    open_definition_only: bool = False
    exclude_noncommercial: bool = False
    exclude_no_derivatives: bool = False
    allow_conflict: bool = True

    def admits(self, spdx: str | None, scope: str | None, conflict: bool | None, claims: Iterable[str] = ()) -> bool:
        """Whether a document with this page verdict may enter a mix.

        ``claims`` are the SPDX ids of every signal that claims the page's text or a part of it (evidence with
        scope ``page`` or ``partial``, :func:`curate.licenses.tagger.page_claims`). The exclusions (NC, ND,
        non-Open-Definition) hold for the verdict when its scope counts, and for every claim whatever the
        verdict: a page where an NC/ND signal claims the text is excluded even when signals conflict (scope
        ``unknown``) or the NC/ND licence covers only a part (``partial``). Media licences claim nothing.
        """
        lic = license_by_spdx(spdx) if spdx else None
        counted = lic is not None and scope in self.scopes and (self.allow_conflict or not conflict)
        if self.require_license and not counted:
            return False
        restricting = [license_by_spdx(c) for c in claims]
        if lic is not None and (scope in self.scopes or conflict):
            restricting.append(lic)
        return not any(self._excludes(r) for r in restricting if r is not None)

    def _excludes(self, lic: License) -> bool:
        return (
            (self.open_definition_only and not lic.open_definition)
            or (self.exclude_noncommercial and lic.noncommercial)
            or (self.exclude_no_derivatives and lic.no_derivatives)
        )


@functools.cache
def load_policies() -> dict[str, Policy]:
    """The policies in ``licenses/policies.toml`` by name."""
    data = tomllib.loads(POLICIES_FILE.read_text(encoding="utf-8"))
    out = {}
    for name, raw in data.get("policies", {}).items():
        spec = {**raw, "scopes": tuple(raw.get("scopes", ("page",)))}
        out[name] = Policy(name=name, **spec)
    return out


def get_policy(name: str) -> Policy:
    """The named policy.

    Raises:
        ConfigError: no such policy; the message lists the known ones.
    """
    policies = load_policies()
    if name not in policies:
        raise ConfigError(
            f"license.policy {name!r} is not defined in {POLICIES_FILE}; known: {', '.join(sorted(policies))}"
        )
    return policies[name]


@dataclass(frozen=True)
class DomainReview:
    """One reviewer decision about a domain."""

    domain: str
    verdict: str
    license_spdx: str | None
    reviewer: str
    date: dt.date
    note: str


def load_domain_reviews(path: Path) -> list[DomainReview]:
    """Read and validate a domain review CSV.

    Raises:
        ConfigError: missing file or column, unknown verdict, bad date, or an ``accept`` without a known licence.
    """
    need = {"domain", "verdict", "license_spdx", "reviewer", "date", "note"}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read domain review file {path}: {getattr(e, 'strerror', None) or e}") from None
    if not need <= header:
        raise ConfigError(
            f"{path}: the first line must name the columns {', '.join(sorted(need))}; "
            f"missing {', '.join(sorted(need - header))}"
        )
    out: list[DomainReview] = []
    for i, row in enumerate(rows, start=2):
        missing = need - set(row)
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        verdict = row["verdict"].strip().lower()
        if verdict not in ("accept", "reject", "note"):
            raise ConfigError(f"{path}:{i}: verdict must be accept, reject or note, got {row['verdict']!r}")
        try:
            date = dt.date.fromisoformat(row["date"].strip())
        except ValueError:
            raise ConfigError(f"{path}:{i}: date must be YYYY-MM-DD, got {row['date']!r}") from None
        spdx = row["license_spdx"].strip() or None
        if verdict == "accept" and (spdx is None or license_by_spdx(spdx) is None):
            raise ConfigError(f"{path}:{i}: an accept needs a known license_spdx, got {row['license_spdx']!r}")
        if not row["reviewer"].strip():
            raise ConfigError(f"{path}:{i}: reviewer is required")
        out.append(
            DomainReview(
                row["domain"].strip().lower().removeprefix("www."),
                verdict,
                spdx,
                row["reviewer"].strip(),
                date,
                row["note"].strip(),
            )
        )
    return out


def excluded_documents(con: Any, policy: Policy) -> list[str]:
    """The ``doc_id`` of every kept document of the store behind ``con`` that ``policy`` excludes, in order:
    what ``curate decide`` drops as ``license_policy`` and what a preview shows.

    Each document is judged on its verdict in force and on its claims: every licence a page signal claims for
    the text (evidence scope ``page`` or ``partial``). An accept or reject domain review replaces the tagger's
    verdict, so its documents are judged on the reviewed verdict alone.
    """
    rows = con.execute(
        f"""SELECT d.doc_id, d.license_spdx, d.license_scope, d.license_conflict,
                   (SELECT list(DISTINCT e.spdx_id) FROM license_evidence e WHERE e.doc_id = d.doc_id
                     AND e.spdx_id IS NOT NULL AND e.scope IN ('page', 'partial') AND e.kind <> 'domain-review')
            FROM documents d WHERE d.status = '{Status.KEPT}' ORDER BY d.doc_id"""
    ).fetchall()
    reviewed = {
        d
        for (d,) in con.execute(
            """SELECT DISTINCT doc_id FROM license_evidence WHERE kind = 'domain-review'
               AND (raw_value LIKE 'accept %' OR raw_value LIKE 'reject %')"""
        ).fetchall()
    }
    return [
        d
        for d, spdx, scope, conflict, claims in rows
        if not policy.admits(spdx, scope, conflict, () if d in reviewed else (claims or ()))
    ]
