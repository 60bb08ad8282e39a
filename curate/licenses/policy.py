"""Licence inclusion policies (data in ``licenses/policies.toml``) and the domain review file.

A policy says which kept documents a mix may contain, judged on the page-licence verdict: whether a licence
is required, which scopes count, whether NC/ND or non-Open-Definition licences are excluded, whether
conflicting signals are tolerated. Documents a policy excludes are dropped with reason ``license_policy``.

A domain review file (CSV: ``domain,verdict,license_spdx,reviewer,date,note``) records human decisions per
domain (``accept``, ``reject``, ``note``); they override page-level verdicts on the next run and are stored as
``domain-review`` evidence rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from curate.errors import ConfigError
from curate.licenses.spdx import license_by_spdx
from curate.resources import LICENSES_DIR

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

    def admits(self, spdx: str | None, scope: str | None, conflict: bool | None) -> bool:
        """Whether a document with this page verdict may enter a mix."""
        lic = license_by_spdx(spdx) if spdx else None
        counted = lic is not None and scope in self.scopes and (self.allow_conflict or not conflict)
        if self.require_license and not counted:
            return False
        if lic is None or scope not in self.scopes:
            return True
        if self.open_definition_only and not lic.open_definition:
            return False
        if self.exclude_noncommercial and lic.noncommercial:
            return False
        return not (self.exclude_no_derivatives and lic.no_derivatives)


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
