"""The provenance report: one self-contained HTML page, every number read from the store.

Every string that came from a crawl (URLs, snippets, header values) is HTML-escaped by Jinja2's autoescaping,
and the page's Content-Security-Policy forbids scripts, so a crawled ``<script>`` can never run in a reviewer's
browser.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from curate.certify import certificates_table, hard_evidence_sql
from curate.errors import ModelError
from curate.escape import csv_cell_sql
from curate.licenses.policy import get_policy
from curate.licenses.spdx import license_by_spdx
from curate.lookup import document_tables
from curate.recipe import Recipe
from curate.schema import REASON_HELP, Reason, Tier
from curate.score.contamination import contamination_table
from curate.score.model import load_card
from curate.score.reference import load_reference

TEMPLATE = Path(__file__).with_name("report_template.html")


def _section(con: Any, sid: str, title: str, sql: str, header: list[str], *, note: str = "") -> dict[str, Any]:
    rows = [list(r) for r in con.execute(sql).fetchall()]
    return {
        "id": sid,
        "title": title,
        "header": header,
        "rows": rows,
        "max": max((r[1] for r in rows), default=0),
        "note": note,
    }


def _reason_section(con: Any) -> dict[str, Any]:
    section = _section(
        con,
        "by-reason",
        "Dropped and quarantined, by reason",
        "SELECT reason, count(*), any_value(status) FROM documents WHERE reason IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
        ["reason", "records", "status", "meaning"],
    )
    known = {r.value: help_text for r, help_text in REASON_HELP.items()}
    for row in section["rows"]:
        row.append(known.get(row[0], ""))
    return section


def _token_view(con: Any, mix: Path | None) -> None:
    sidecar = mix / "sidecar.parquet" if mix is not None else None
    if sidecar is not None and sidecar.exists():
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW mix_tokens AS SELECT doc_id, sum(token_end - token_start) AS tokens FROM read_parquet('{sidecar.as_posix()}') GROUP BY doc_id"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW mix_tokens AS SELECT NULL::VARCHAR AS doc_id, 0::BIGINT AS tokens WHERE false"
        )


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _nc_nd_in_mix(con: Any) -> list[tuple[str, int, int]]:
    """(licence, documents, tokens) of mixed text under a non-commercial or no-derivatives licence."""
    rows = con.execute(
        """SELECT d.license_spdx, count(*), sum(t.tokens) FROM documents d JOIN mix_tokens t USING (doc_id)
           WHERE t.tokens > 0 AND d.license_spdx IS NOT NULL GROUP BY 1 ORDER BY 3 DESC, 1"""
    ).fetchall()
    out = []
    for spdx, docs, tokens in rows:
        lic = license_by_spdx(spdx)
        if lic is not None and (lic.noncommercial or lic.no_derivatives):
            out.append((spdx, int(docs), int(tokens)))
    return out


EVIDENCE_SAMPLE = 50
OPTOUT_SAMPLE = 100


def _samples(con: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The licence-evidence and opt-out rows the report shows (the rest are in the exports)."""
    ev = con.execute(
        f"""SELECT d.doc_id, d.url, e.spdx_id, e.kind, e.location, e.scope, e.snippet, d.warc_file_name,
                   d.record_offset, d.record_length
            FROM license_evidence e JOIN documents d USING (doc_id) WHERE e.spdx_id IS NOT NULL
            ORDER BY d.doc_id, e.kind LIMIT {EVIDENCE_SAMPLE}"""
    )
    evidence = [dict(zip([c[0] for c in ev.description], r, strict=True)) for r in ev.fetchall()]
    op = con.execute(
        f"""SELECT d.doc_id, d.url, o.kind, o.raw_value, coalesce(o.agent, 'all agents') AS agent,
                   coalesce(o.observed_at::VARCHAR, 'unknown') AS observed_at, o.source
            FROM optout_evidence o JOIN documents d USING (doc_id) ORDER BY d.doc_id, o.kind LIMIT {OPTOUT_SAMPLE}"""
    )
    optouts = [dict(zip([c[0] for c in op.description], r, strict=True)) for r in op.fetchall()]
    return evidence, optouts


DOC_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ doc_id }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px} table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top} .mono{font-family:monospace}</style>
</head><body><h1>Document <span class="mono">{{ doc_id }}</span></h1>
<p><a href="../../{{ report }}">back to the report</a>; the same in a terminal: <code>curate show STORE {{ doc_id }}</code></p>
{% for t in tables %}<h2>{{ t.title }}</h2>{% if t.rows %}<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in t.rows %}<tr>{% for v in r %}<td class="mono">{{ "NULL" if v is none else v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% else %}<p>none</p>{% endif %}{% endfor %}</body></html>
"""


def write_document_pages(con: Any, folder: Path, report_name: str = "report.html") -> int:
    """One HTML page per document the report shows in its samples (``folder/<doc_id>.html``): the tables of
    ``curate show``, every crawled string escaped. Returns the pages written."""
    import jinja2

    evidence, optouts = _samples(con)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(DOC_PAGE)
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted({r["doc_id"] for r in evidence + optouts})
    for doc_id in ids:
        html = page.render(doc_id=doc_id, tables=document_tables(con, doc_id), report=report_name)
        (folder / f"{doc_id}.html").write_text(html, encoding="utf-8")
    return len(ids)


def latest_decision(con: Any) -> dict[str, Any]:
    """The store's latest decision pass as a dict (what the report's header shows): ``run_id`` names it."""
    cols = [d[0] for d in con.execute("SELECT * FROM decisions LIMIT 0").description]
    row = con.execute("SELECT * FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()
    out = dict(zip(cols, row, strict=True))
    out["run_id"] = f"decision {out['decision_id']}"
    return out


def ingested_inputs(con: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every input file of every ingest (with its SHA-256 and ingest id), and the latest ingest's versions."""
    inputs: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    for run_id, inputs_json, versions_json in con.execute(
        "SELECT run_id, inputs_json, versions_json FROM runs ORDER BY started_at, run_id"
    ).fetchall():
        inputs += [{**e, "run_id": run_id} for e in json.loads(inputs_json or "[]")]
        versions = json.loads(versions_json or "{}")
    return sorted(inputs, key=lambda e: str(e["path"])), versions


def report_context(
    con: Any, recipe: Recipe, mix: Path | None = None, report_dir: Path | None = None, attribution: str | None = None
) -> dict[str, Any]:
    """Everything the report shows, as plain data (also handy in a notebook). ``mix`` adds token counts and the
    attribution file; ``report_dir`` (where the page goes) makes its links relative; ``attribution``: the link to
    the mix's ``ATTRIBUTION.md`` when it is not ``mix``'s own (a mix at a URL, read from a local copy)."""

    _token_view(con, mix)
    policy = get_policy(recipe.license.policy)
    run = latest_decision(con)
    by = "count(*) AS n, count(*) FILTER (status = 'kept') AS kept"
    sections = [
        _section(
            con,
            "by-status",
            "By status",
            f"SELECT status, {by} FROM documents GROUP BY 1 ORDER BY 2 DESC, 1",
            ["status", "records", "kept"],
        ),
        _section(
            con,
            "by-tier",
            "By low-background tier",
            f"SELECT coalesce(tier, 'unknown: ' || coalesce(date_reason, 'no record')), {by} FROM documents GROUP BY 1 ORDER BY 2 DESC, 1",
            ["tier", "records", "kept"],
            note="pre_cutoff: WARC-Date before the cutoff (hard evidence). attested: same payload captured before it.",
        ),
        _section(
            con,
            "by-tier-evidence",
            "Kept documents and tokens by tier and the hard evidence it rests on",
            hard_evidence_sql(recipe.cutoff),
            ["tier · hard evidence", "kept", "mix tokens", "flagged"],
            note="Every tier rests on hard evidence alone: this capture's WARC-Date (or the interval its certain "
            "parts prove), or the same payload digest captured before the cutoff. Page dates are soft and same-URL "
            "captures weak: they never set a tier. flagged: a contradiction in the evidence (curate certify).",
        ),
        _reason_section(con),
        _section(
            con,
            "by-language",
            "By language",
            f"SELECT coalesce(language, 'unknown'), {by} FROM documents WHERE record_type IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 30",
            ["language", "records", "kept"],
        ),
        _section(
            con,
            "by-licence",
            "By licence (page verdict)",
            f"SELECT coalesce(license_spdx, 'none found') || ' · ' || coalesce(license_scope, '-'), {by} FROM documents WHERE record_type IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
            ["licence · scope", "records", "kept"],
            note="scope page: a rel=license, licence meta or page JSON-LD; media: the licence covers an image or embed; unknown: only bare links or conflicting signals.",
        ),
        _section(
            con,
            "by-licence-tokens",
            "Licences of the kept documents, with tokens in the mix",
            """SELECT coalesce(d.license_spdx, 'none found') || ' · ' || coalesce(d.license_scope, '-'), count(*),
                      coalesce(sum(t.tokens), 0), count(*) FILTER (d.license_conflict)
               FROM documents d LEFT JOIN mix_tokens t USING (doc_id) WHERE d.status = 'kept' GROUP BY 1 ORDER BY 2 DESC, 1""",
            ["licence · scope", "kept", "mix tokens", "conflicting"],
        ),
        _section(
            con,
            "by-policy",
            f"Licence policy applied: {policy.name}",
            """SELECT coalesce(license_spdx, 'none found') || ' · ' || coalesce(license_scope, '-'), count(*)
               FROM documents WHERE reason = 'license_policy' GROUP BY 1 ORDER BY 2 DESC, 1""",
            ["excluded licence · scope", "records"],
            note=policy.description,
        ),
        _section(
            con,
            "by-domain-licence",
            "Domains: licensed pages and tokens (top 50 by kept documents)",
            """SELECT coalesce(d.domain, 'unknown'), count(*) FILTER (d.status = 'kept'), count(*) FILTER (d.license_scope = 'page'),
                      count(*) FILTER (d.optout OR d.optout_site), coalesce(sum(t.tokens), 0)
               FROM documents d LEFT JOIN mix_tokens t USING (doc_id) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50""",
            ["domain", "kept", "page-licensed", "opted out", "mix tokens"],
        ),
        _section(
            con,
            "by-domain",
            "By domain (top 50)",
            f"SELECT coalesce(domain, 'unknown'), {by} FROM documents GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50",
            ["domain", "records", "kept"],
        ),
        _section(
            con,
            "by-mgt",
            "P(model-generated), scored records",
            "SELECT printf('%.1f–%.1f', floor(mgt_score * 10) / 10, floor(mgt_score * 10) / 10 + 0.1), count(*), count(*) FILTER (status = 'kept') FROM documents WHERE mgt_score IS NOT NULL GROUP BY floor(mgt_score * 10) ORDER BY floor(mgt_score * 10)",
            ["score", "records", "kept"],
        ),
        _section(
            con,
            "pre-cutoff-extreme",
            f"Pre-cutoff records with an extreme MGT score (>= {recipe.score.pre_cutoff_extreme}), by crawl",
            f"""SELECT coalesce(crawl_id, 'no crawl id'), count(*) FILTER (mgt_score >= {recipe.score.pre_cutoff_extreme}),
                      count(*), count(*) FILTER (reason = '{Reason.MGT_PRE_CUTOFF_EXTREME}')
               FROM documents WHERE tier IN ('{Tier.PRE_CUTOFF}', '{Tier.ATTESTED}') AND mgt_score IS NOT NULL
               GROUP BY 1 ORDER BY 2 DESC, 3 DESC, 1""",
            ["crawl", "at or above", "scored pre-cutoff", "dropped"],
            note="Pre-cutoff is not proof of human: GPT-2/GPT-3 content farms existed from 2019. These records are "
            + (
                "dropped (score.pre_cutoff_drop = true) and left out of the store's reference."
                if recipe.score.pre_cutoff_drop
                else "counted, not dropped (score.pre_cutoff_drop = false)."
            ),
        ),
        _section(
            con,
            "site-scores",
            "Site-level MGT evidence: post-cutoff pages against the same site's pre-cutoff pages (top 50 sites)",
            """SELECT domain, n_post, n_pre, pre_median, post_median, shift_auc, shift_p, post_flagged, evidence
               FROM site_scores ORDER BY n_post DESC, domain LIMIT 50""",
            [
                "site",
                "post-cutoff pages",
                "pre-cutoff pages",
                "pre median",
                "post median",
                "P(post > pre)",
                "p (one-sided)",
                "flagged by the page rule",
                "evidence",
            ],
            note="Mann-Whitney comparison within each site (ties count half); shifted: p < score.site_alpha with at "
            "least score.site_min_pages pages each side. "
            + (
                "The decision rule uses it (score.site_rule = true): pages of shifted sites above the "
                f"{recipe.score.site_quantile} quantile of the reference are dropped as mgt_site_shift."
                if recipe.score.site_rule
                else "Evidence only: the decision rule does not use it (score.site_rule = false)."
            ),
        ),
        _section(
            con,
            "by-dedup",
            "Duplicates",
            "SELECT dup_kind, count(*), count(DISTINCT dup_cluster_id) FROM documents WHERE dup_kind IS NOT NULL GROUP BY 1 ORDER BY 1",
            ["kind", "records", "clusters"],
        ),
    ]
    sections.append(
        _section(
            con,
            "by-domain-review",
            "Domains: licence verdicts and domain reviews (every domain with a licence signal or a review)",
            """SELECT d.domain, count(*) FILTER (d.status = 'kept'),
                      string_agg(DISTINCT coalesce(d.tagged_license_spdx, 'none') || ' ' || coalesce(d.tagged_license_scope, '-'), '; '),
                      string_agg(DISTINCT coalesce(d.license_spdx, 'none') || ' ' || coalesce(d.license_scope, '-'), '; '),
                      coalesce(any_value(r.raw_value), 'not reviewed')
               FROM documents d LEFT JOIN (SELECT doc_id, raw_value FROM license_evidence WHERE kind = 'domain-review') r
                 USING (doc_id)
               WHERE d.domain IS NOT NULL AND (d.tagged_license_spdx IS NOT NULL OR r.raw_value IS NOT NULL)
               GROUP BY 1 ORDER BY 2 DESC, 1""",
            ["domain", "kept", "tagger's verdicts", "verdicts in force", "domain review"],
            note="The tagger's page verdicts, the verdicts in force after domain reviews, and each domain's review. "
            "Every document's verdict is in provenance/documents.csv.",
        )
    )
    evidence, optouts = _samples(con)
    inputs, versions = ingested_inputs(con)

    card_hist = load_card(recipe.score.model).get("reference_histograms")
    try:
        shipped = load_reference(recipe.score.model)
    except ModelError:  # stale or corrupt: the estimate falls back to the card's validation humans, and says so
        shipped = None
    contamination = {}
    source = ""
    for by in ("crawl", "month", "domain"):
        contamination[by], source = contamination_table(
            con,
            card_hist,
            by,
            min_docs=20 if by != "domain" else 10,
            limit=1000 if by == "month" else 30,
            shipped=shipped.scores if shipped is not None else None,
        )
        if by == "month":  # every month, in time order
            contamination[by].sort(key=lambda r: str(r["group"]))
    not_checked = []
    if not (recipe.optout.robots_dir or recipe.optout.tdmrep_dir):
        not_checked.append(
            "site-level opt-outs: no robots.txt or TDMRep snapshots were given (optout.robots_dir, optout.tdmrep_dir), "
            "so only signals inside the captured records were checked"
        )
    elif not recipe.optout.honour_site:
        not_checked.append("site-level opt-outs were recorded but not honoured (optout.honour_site = false)")
    if not recipe.optout.honour:
        not_checked.append("opt-outs in the records were recorded but not honoured (optout.honour = false)")
    if not recipe.license.domain_review:
        not_checked.append("no domain review file was given (license.domain_review): every verdict is the tagger's")
    nc_nd = _nc_nd_in_mix(con) if mix is not None else []
    totals = {
        "evidence": con.execute("SELECT count(*) FROM license_evidence WHERE spdx_id IS NOT NULL").fetchone()[0],
        "optouts": con.execute("SELECT count(*) FROM optout_evidence").fetchone()[0],
    }
    return {
        "not_checked": not_checked,
        "nc_nd": nc_nd,
        "totals": totals,
        "attribution": attribution
        or (_relative(mix / "ATTRIBUTION.md", report_dir) if mix is not None and report_dir else None),
        "exports": _relative(report_dir / "provenance", report_dir) if report_dir else "provenance",
        "contamination": contamination,
        "contamination_source": source,
        "run": run,
        "cutoff": recipe.cutoff.isoformat(),
        "sections": sections,
        "evidence": evidence,
        "optouts": optouts,
        "policy": policy,
        "inputs": inputs,
        "versions": sorted(versions.items()),
    }


KEPT_EXPORT = """
    SELECT d.doc_id, d.url, d.domain, d.warc_file, d.record_offset, d.record_length, d.warc_record_id,
           d.warc_payload_digest, d.warc_date, d.crawl_id, d.tier, d.license_spdx, d.license_scope,
           d.license_confidence, d.license_conflict, d.license_url, d.title, d.author, d.site_name,
           d.optout, d.optout_site, d.mgt_score, d.flags, coalesce(t.tokens, 0) AS mix_tokens
    FROM documents d LEFT JOIN mix_tokens t USING (doc_id) WHERE d.status = 'kept' ORDER BY d.doc_id"""


ALL_EXPORT = """
    SELECT d.doc_id, d.status, d.reason, d.reason_detail, d.url, d.domain, d.warc_file, d.record_offset,
           d.record_length, d.warc_record_id, d.warc_payload_digest, d.warc_date, d.crawl_id, d.tier, d.date_reason,
           d.tagged_license_spdx, d.tagged_license_scope, d.license_spdx, d.license_scope, d.license_conflict,
           d.license_url, d.title, d.author, d.site_name, d.optout, d.optout_site, d.mgt_score, d.mgt_reason,
           d.dup_cluster_id, d.decision_id, d.flags, d.flag_detail, coalesce(t.tokens, 0) AS mix_tokens
    FROM documents d LEFT JOIN mix_tokens t USING (doc_id) ORDER BY d.doc_id"""


def export_provenance(con: Any, folder: Path, mix: Path | None = None) -> list[Path]:
    """Write every document's status, licence, attribution and coordinates (``documents``: kept, dropped and
    excluded alike; ``kept_documents`` the kept ones), all licence, opt-out and attestation evidence, and each kept
    document's certificate (``certificates``: tier, hard_evidence_only, contradictions, the certificate as JSON), as CSV and Parquet
    into ``folder`` (written beside it and renamed into place when whole). In the CSV files a crawled value
    that a spreadsheet would read as a formula starts with an apostrophe (:func:`curate.escape.csv_cell_sql`)."""
    _token_view(con, mix)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    queries = {
        "kept_documents": KEPT_EXPORT,
        "documents": ALL_EXPORT,
        "license_evidence": "SELECT e.* FROM license_evidence e ORDER BY ALL",
        "optout_evidence": "SELECT o.* FROM optout_evidence o ORDER BY ALL",
        "attestation_evidence": "SELECT a.* FROM attestation_evidence a ORDER BY ALL",
        "certificates": "SELECT * FROM certificates ORDER BY doc_id",
    }
    names: list[str] = []
    try:
        con.register("certificates", certificates_table(con))
        _export(con, tmp, queries, names)
        write_document_pages(con, tmp / "doc")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.unregister("certificates")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return [folder / n for n in names]


def _export(con: Any, tmp: Path, queries: dict[str, str], names: list[str]) -> None:
    for name, sql in queries.items():
        columns = con.execute(f"DESCRIBE ({sql})").fetchall()
        as_csv = ", ".join(csv_cell_sql(c[0]) if c[1] == "VARCHAR" else c[0] for c in columns)
        for fmt, query, options in (
            ("parquet", sql, "FORMAT parquet, COMPRESSION zstd"),
            ("csv", f"SELECT {as_csv} FROM ({sql})", "FORMAT csv, HEADER true"),
        ):
            con.execute(f"COPY ({query}) TO '{(tmp / f'{name}.{fmt}').as_posix()}' ({options})")
            names.append(f"{name}.{fmt}")


def render_report(
    con: Any, recipe: Recipe, path: Path, mix: Path | None = None, *, attribution: str | None = None
) -> None:
    """Write the HTML report of the store behind ``con`` to ``path`` (token counts from ``mix`` when given;
    ``attribution``: the link to the mix's attribution file, see :func:`report_context`)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        **report_context(con, recipe, mix, report_dir=path.parent, attribution=attribution)
    )
    path.write_text(html, encoding="utf-8")
