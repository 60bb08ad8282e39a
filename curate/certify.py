"""Certificates: for one document, the tier and the chain of time evidence behind it, checkable by a reviewer.

A certificate lists every time evidence item the store holds for a document, each with its kind, strength
(:class:`curate.schema.Strength`), source and coordinates (a WARC file and byte range, an index file, another
store), the time or interval it shows and what that proves against the cutoff of the decision that set the
document's status: ``pre_cutoff`` (wholly before it), ``post_cutoff`` (wholly after) or ``nothing`` (an interval
containing the cutoff, soft or weak evidence, a range). Contradictions are flagged (:class:`EvidenceFlag`). The
``basis`` is the hard items that prove the tier; ``hard_evidence_only`` is true when the tier rests on them
alone, which every tier does by construction (soft and weak evidence never set one). It also names the tool,
recipe, schema and index versions. Built from the store alone.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from curate import __version__
from curate.crawl_calendar import crawl_range, observed_ranges
from curate.errors import StoreError
from curate.schema import (
    CERTIFICATE_NAME,
    EVIDENCE_STRENGTH,
    EvidenceFlag,
    EvidenceKind,
    Strength,
    Tier,
)
from curate.store import open_store, registered

_DOC_SQL = """
SELECT d.doc_id, d.url, d.status, d.reason, d.tier, d.warc_date, d.warc_date_raw, d.date_rule, d.warc_date_from,
       d.warc_date_until, d.date_reason, d.crawl_id, d.warc_file, d.record_offset, d.record_length, d.warc_record_id,
       d.warc_payload_digest, d.payload_digest_ok, d.page_date, d.http_last_modified, d.decision_id,
       x.cutoff, x.recipe_name, x.recipe_version, x.recipe_digest, x.schema_version
FROM documents d LEFT JOIN decisions x USING (decision_id) WHERE {where} ORDER BY d.doc_id"""

_SAME_STORE_SQL = """
SELECT d.doc_id, o.doc_id, o.url, o.warc_date, o.crawl_id, o.warc_file, o.record_offset, o.record_length
FROM documents d JOIN documents o ON o.warc_payload_digest = d.warc_payload_digest AND o.doc_id <> d.doc_id
WHERE {where} AND o.warc_date IS NOT NULL AND coalesce(o.payload_digest_ok, true)
  AND coalesce(d.payload_digest_ok, true)
QUALIFY row_number() OVER (PARTITION BY d.doc_id ORDER BY o.warc_date, o.doc_id) = 1"""

_EVIDENCE_SQL = """
SELECT e.doc_id, e.kind, e.strength, e.source, e.digest, e.url, e.fetch_time, e.tz_assumed, e.crawl, e.warc_filename,
       e.warc_record_offset, e.warc_record_length, e.fetch_status, e.mime, e.flag, p.pass_id, p.tool, p.sources_json
FROM documents d JOIN attestation_evidence e USING (doc_id) LEFT JOIN attest_passes p USING (pass_id)
WHERE {where} ORDER BY e.doc_id, e.fetch_time, e.source, e.crawl"""


def _iso(v: Any) -> str | None:
    return v.isoformat() if isinstance(v, dt.datetime | dt.date) else (None if v is None else str(v))


def _proves(lo: dt.datetime | None, hi: dt.datetime | None, cutoff: dt.datetime | None) -> str:
    """What the interval [lo, hi) proves against the cutoff (an instant is lo == hi)."""
    if cutoff is None or lo is None or hi is None:
        return "nothing"
    if hi < cutoff or (hi == cutoff and lo < hi):
        return Tier.PRE_CUTOFF.value
    if lo >= cutoff:
        return Tier.POST_CUTOFF.value
    return "nothing"


def _item(kind: EvidenceKind, source: str, coordinates: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "strength": EVIDENCE_STRENGTH[kind].value,
        "source": source,
        "coordinates": coordinates,
        **rest,
    }


def _page_date(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _build(
    doc: tuple[Any, ...], same: tuple[Any, ...] | None, found: list[tuple[Any, ...]], observed: dict[str, Any]
) -> dict[str, Any]:
    (doc_id, url, status, reason, tier, warc_date, raw, rule, lo, hi, date_reason, crawl, wfile, offset, length,
     record_id, digest, digest_ok, page_date, last_modified, decision_id, cutoff_day, r_name, r_version, r_digest, schema) = doc  # fmt: skip
    cutoff = dt.datetime.combine(cutoff_day, dt.time(), dt.UTC) if cutoff_day else None
    here = {"warc_file": wfile, "record_offset": offset, "record_length": length, "warc_record_id": record_id}
    items: list[dict[str, Any]] = []
    calendar = crawl_range(crawl) or observed.get(crawl or "")
    if warc_date is not None:
        flags = []
        if calendar is not None and calendar.basis != "observed" and not calendar.holds(warc_date):
            flags.append(EvidenceFlag.OUTSIDE_CRAWL_RANGE.value)
        items.append(
            _item(
                EvidenceKind.WARC_DATE,
                "this capture",
                here,
                time=_iso(warc_date),
                raw=raw,
                rule=rule,
                proves=_proves(warc_date, warc_date, cutoff),
                flags=flags,
            )
        )
    elif lo is not None:
        items.append(
            _item(
                EvidenceKind.WARC_DATE_INTERVAL,
                "this capture",
                here,
                interval=[_iso(lo), _iso(hi)],
                raw=raw,
                rule=rule,
                date_reason=date_reason,
                proves=_proves(lo, hi, cutoff),
                flags=[],
            )
        )
    if same is not None:
        _, o_id, o_url, o_date, o_crawl, o_file, o_off, o_len = same
        items.append(
            _item(
                EvidenceKind.STORE_CAPTURE,
                "this store",
                {"doc_id": o_id, "warc_file": o_file, "record_offset": o_off, "record_length": o_len},
                url=o_url,
                crawl=o_crawl,
                time=_iso(o_date),
                digest=digest,
                proves="nothing" if _proves(o_date, o_date, cutoff) != Tier.PRE_CUTOFF else Tier.PRE_CUTOFF.value,
                flags=[],
            )
        )
    passes: dict[int, dict[str, Any]] = {}
    for e in found:
        (_, kind, strength, source, e_digest, e_url, fetch, tz_assumed, e_crawl, e_file, e_off, e_len, f_status, mime,
         flag, pass_id, tool, sources_json) = e  # fmt: skip
        hard = strength == Strength.HARD
        proves = _proves(fetch, fetch, cutoff) if hard and not flag else "nothing"  # post-cutoff proves nothing
        items.append(
            {
                "kind": kind,
                "strength": strength,
                "source": source,
                "coordinates": {"warc_filename": e_file, "warc_record_offset": e_off, "warc_record_length": e_len},
                "url": e_url,
                "crawl": e_crawl,
                "time": _iso(fetch),
                "time_zone": "none given: read as UTC" if tz_assumed else "UTC",
                "digest": e_digest,
                "fetch_status": f_status,
                "mime": mime,
                "proves": proves if proves == Tier.PRE_CUTOFF else "nothing",
                "flags": [flag] if flag else [],
                "attest_pass": pass_id,
            }
        )
        if pass_id is not None:
            passes[pass_id] = {"pass_id": pass_id, "tool": tool, "sources": json.loads(sources_json or "[]")}
    captured = warc_date or hi
    for kind, source, when, late_flag, extra in (
        (EvidenceKind.PAGE_DATE, "the page's own statement", _page_date(page_date), EvidenceFlag.PUBLISHED_AFTER_CAPTURE,
         {"raw": page_date}),
        (EvidenceKind.HTTP_LAST_MODIFIED, "the server's HTTP headers of this capture", last_modified,
         EvidenceFlag.MODIFIED_AFTER_CAPTURE, {}),
    ):  # fmt: skip
        if when is None:
            continue
        late = captured is not None and when > captured
        items.append(
            _item(
                kind,
                source,
                here,
                time=_iso(when),
                **extra,
                proves="nothing",
                flags=[late_flag.value] if late else [],
            )
        )
    if calendar is not None:
        items.append(
            _item(
                EvidenceKind.CRAWL_CALENDAR,
                "crawl calendar" if calendar.basis != "observed" else "this store's WARC dates",
                {"crawl": crawl},
                range=calendar.as_dict(),
                proves="nothing",
                flags=[],
            )
        )
    basis = [i for i in items if i["strength"] == Strength.HARD and i["proves"] == tier and not i["flags"]]
    if tier == Tier.ATTESTED:
        basis = [i for i in items if i["kind"] not in (EvidenceKind.WARC_DATE, EvidenceKind.WARC_DATE_INTERVAL)]
        basis = [i for i in basis if i["strength"] == Strength.HARD and i["proves"] == Tier.PRE_CUTOFF]
    return {
        "certificate": CERTIFICATE_NAME,
        "doc_id": doc_id,
        "url": url,
        "status": status,
        "reason": reason,
        "tier": tier,
        "cutoff": _iso(cutoff_day),
        "payload_digest": digest,
        "payload_digest_verified": digest_ok,
        "basis": [i["kind"] for i in basis],
        "hard_evidence_only": tier is not None and bool(basis),
        "contradictions": sorted({f for i in items for f in i["flags"]}),
        "evidence": items,
        "versions": {
            "curate": __version__,
            "schema": schema,
            "decision": decision_id,
            "recipe": {"name": r_name, "version": r_version, "digest": r_digest},
            "attest_passes": [passes[k] for k in sorted(passes)],
        },
    }


def certificates(con: Any, doc_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The certificates of ``doc_ids`` (every kept document when None), in doc_id order."""
    where = "d.doc_id IN (SELECT doc_id FROM wanted)" if doc_ids is not None else "d.status = 'kept'"
    con.execute("SET TimeZone = 'UTC'").fetchall()  # and no result left open before registering
    with registered(con, "wanted", {"doc_id": list(doc_ids or [])}):
        docs = con.execute(_DOC_SQL.format(where=where)).fetchall()
        same = {r[0]: tuple(r) for r in con.execute(_SAME_STORE_SQL.format(where=where)).fetchall()}
        found: dict[str, list[tuple[Any, ...]]] = {}
        for r in con.execute(_EVIDENCE_SQL.format(where=where)).fetchall():
            found.setdefault(r[0], []).append(tuple(r))
    observed = observed_ranges(con)
    return [_build(tuple(d), same.get(d[0]), found.get(d[0], []), observed) for d in docs]


def certificate(con: Any, doc_id: str) -> dict[str, Any]:
    """The certificate of one document.

    Raises:
        StoreError: no document ``doc_id`` in the store.
    """
    found = certificates(con, [doc_id])
    if not found:
        raise StoreError(f"no document {doc_id} in the store (doc_ids are in documents.doc_id, e.g. curate show)")
    return found[0]


def certificate_lines(cert: dict[str, Any]) -> list[str]:
    """A certificate as text for a person."""
    lines = [
        f"certificate ({cert['certificate']}) of {cert['doc_id']}",
        f"  url      {cert['url']}",
        f"  status   {cert['status']}" + (f" ({cert['reason']})" if cert["reason"] else ""),
        f"  tier     {cert['tier'] or 'none: no hard evidence of when it existed'} against cutoff {cert['cutoff']}",
        f"  basis    {', '.join(cert['basis']) or 'none'}; hard evidence only: {'yes' if cert['hard_evidence_only'] else 'no'}",
        f"  digest   {cert['payload_digest']} (verified: {cert['payload_digest_verified']})",
    ]
    if cert["contradictions"]:
        lines.append(f"  flagged  {', '.join(cert['contradictions'])}")
    lines.append("  evidence")
    for i in cert["evidence"]:
        when = i.get("time") or (" to ".join(i["interval"]) if i.get("interval") else None)
        if i.get("range"):
            when = f"{i['range']['first_fetch']} to {i['range']['last_fetch']} ({i['range']['basis']})"
        coords = ", ".join(f"{k}={v}" for k, v in i["coordinates"].items() if v is not None)
        flags = f" FLAGGED {', '.join(i['flags'])}" if i["flags"] else ""
        lines.append(f"    - {i['kind']} [{i['strength']}] {when}: proves {i['proves']}{flags}")
        lines.append(f"      source {i['source']}; {coords}")
        if i.get("url") and i["kind"] != EvidenceKind.PAGE_DATE:
            lines.append(f"      url {i['url']}" + (f" ({i['time_zone']})" if i.get("time_zone") else ""))
    v = cert["versions"]
    lines.append(
        f"  versions curate {v['curate']}, {v['schema']}, decision {v['decision']}, recipe {v['recipe']['name']} "
        f"v{v['recipe']['version']} ({(v['recipe']['digest'] or '')[:12]})"
    )
    for p in v["attest_passes"]:
        described = "; ".join(f"{s['kind']} {s['path']}" for s in p["sources"])
        lines.append(f"  attest   pass {p['pass_id']} ({p['tool']}): {described}")
    return lines


def certify(store: Path, doc_id: str) -> dict[str, Any]:
    """The certificate of document ``doc_id`` of the store in folder ``store`` (opened read-only).

    Raises:
        StoreError: not a store, an older schema, or no such document.
    """
    con = open_store(store)
    try:
        return certificate(con, doc_id)
    finally:
        con.close()


def certificates_table(con: Any) -> Any:
    """Every kept document's certificate as a pyarrow Table (``doc_id``, ``tier``, ``hard_evidence_only``,
    ``contradictions``, ``certificate``: the whole certificate as JSON), for the exports."""
    import pyarrow as pa

    certs = certificates(con)
    return pa.table(
        {
            "doc_id": pa.array([c["doc_id"] for c in certs], pa.string()),
            "tier": pa.array([c["tier"] for c in certs], pa.string()),
            "hard_evidence_only": pa.array([c["hard_evidence_only"] for c in certs], pa.bool_()),
            "contradictions": pa.array([",".join(c["contradictions"]) for c in certs], pa.string()),
            "certificate": pa.array([json.dumps(c, sort_keys=True) for c in certs], pa.string()),
        }
    )


def hard_evidence_sql(cutoff: dt.date) -> str:
    """SQL (for the report): kept documents and mix tokens (a ``mix_tokens`` view) by tier and the hard evidence
    that proves it, with how many carry a flagged contradiction in their attestation evidence."""
    day = cutoff.isoformat()
    outside = (
        "SELECT doc_id FROM attestation_evidence WHERE strength = 'hard' AND flag IS NULL "
        f"AND fetch_time < TIMESTAMPTZ '{day} 00:00:00+00'"
    )
    return f"""
SELECT coalesce(d.tier, 'none') || ' · ' || CASE WHEN d.tier IS NULL THEN 'none: capture date unknown'
            WHEN d.tier = '{Tier.ATTESTED}' AND d.doc_id IN ({outside}) THEN 'digest captured before the cutoff (index or earlier store)'
            WHEN d.tier = '{Tier.ATTESTED}' THEN 'digest captured before the cutoff (this store)'
            WHEN d.warc_date IS NULL THEN 'WARC-Date interval (certain year/month)'
            ELSE 'WARC-Date' END AS basis,
       count(*), coalesce(sum(t.tokens), 0),
       count(*) FILTER (d.doc_id IN (SELECT doc_id FROM attestation_evidence WHERE flag IS NOT NULL))
FROM documents d LEFT JOIN mix_tokens t USING (doc_id) WHERE d.status = 'kept' GROUP BY 1 ORDER BY 2 DESC, 1"""
