"""The keep rules: from what the store holds to each record's ``status`` and ``reason``.

This is the only module that sets ``documents.status``/``reason``/``reason_detail``. A decision pass reads
nothing but the store (no WARC), so a new cutoff, MGT rule, licence policy or domain review re-decides every
record in seconds. In order, each rule applies only to records that no earlier rule ruled out:

1. tiers from WARC-Date against the recipe's cutoff (a malformed date read as an interval gives a tier only when
   the whole interval lies on one side of it); ``attested`` where a post-cutoff capture's verified payload digest
   was captured before the cutoff anywhere in the store, or where ``curate attest`` recorded an unflagged capture
   of the same digest fetched before the cutoff (Common Crawl index, earlier store; undated captures too);
2. what ingest found (``ingest_reason``: unreadable, truncated, not HTML, HTTP error, …);
3. per record: a truncated payload (flags ``http_truncated``/``warc_truncated``, when the recipe's
   ``read.truncated`` is ``drop``), no text, too short, language, opt-outs, unknown capture date;
4. the MGT rules: pre-cutoff records at an extreme score (when the recipe drops them); post-cutoff records
   judged against a human reference (the store's own pre-cutoff captures when it has ``score.min_reference``
   of them, else the classifier's shipped reference: never silently a probability threshold) or a probability;
   then site-level evidence (``site_scores``), which drops pages only when ``score.site_rule`` is on;
5. licences: domain reviews over the tagger's verdicts, then the licence policy;
6. duplicates: in each cluster (``curate dedup``) the earliest capture the rules above keep represents, the
   other kept members are dropped as ``duplicate_of`` it.

Each pass is a row of ``decisions`` (recipe, digest, time, counts, and the MGT rule applied with the reference
that decided: its source, size and digests), and every record carries its ``decision_id``, so a status can be
explained later.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.dedup.minhash import Member, choose_representatives
from curate.errors import ConfigError, CurateError
from curate.licenses.policy import excluded_documents, get_policy, load_domain_reviews
from curate.recipe import Recipe, ingest_settings, with_store_settings
from curate.schema import (
    ATTESTING_KINDS,
    INGEST_REASONS,
    LICENSE_TAGGER_NAME,
    SCHEMA_VERSION,
    Flag,
    MgtReference,
    Reason,
    SiteEvidence,
    Status,
    Strength,
    Tier,
    status_for,
)
from curate.score.contamination import set_percentiles, store_reference_size
from curate.score.reference import load_reference
from curate.score.site import site_rows, write_site_scores
from curate.store import RunCounts, counts, registered


@dataclass(frozen=True)
class MgtRule:
    """The MGT rule a decision pass applied, and the reference that decided."""

    text: str  # what decisions.mgt_rule records: the rule, the reference, its size and digests
    kind: str  # reference | probability
    source: str | None  # MgtReference.STORE or SHIPPED under the reference rule; None under probability
    n_reference: int  # scores in the reference used (0 under probability)
    n_store: int  # the store's pre-cutoff English scores (its own reference, used or not)
    pre_cutoff_extreme: int  # scored pre-cutoff/attested records at or above score.pre_cutoff_extreme
    pre_cutoff_dropped: int  # of those, dropped (score.pre_cutoff_drop)
    sites_shifted: int  # sites whose post-cutoff scores shifted up against their own pre-cutoff ones
    site_dropped: int  # pages dropped by the site rule (score.site_rule)


@dataclass(frozen=True)
class Decision:
    """What one decision pass did."""

    decision_id: int
    counts: RunCounts
    mgt: MgtRule

    @property
    def mgt_rule(self) -> str:
        """What ``decisions.mgt_rule`` records: the MGT rule applied and the reference that decided."""
        return self.mgt.text


def check_ingest_settings(con: Any, recipe: Recipe) -> Recipe:
    """``recipe`` with the store's ingest-time settings where it leaves a key at its default
    (:func:`curate.recipe.with_store_settings`); refuse a recipe that sets one to another value than the
    store's documents were ingested with: those keys act while the WARCs are read, so only a new ingest can
    apply them.

    Raises:
        ConfigError: naming each differing key, both values, and what to do.
    """
    row = con.execute("SELECT value FROM store_meta WHERE key = 'ingest_settings'").fetchone()
    if row is None:
        return recipe
    stored = json.loads(row[0])
    recipe = with_store_settings(recipe, stored)
    wanted = ingest_settings(recipe)
    diff = [k for k in sorted(wanted) if k in stored and stored[k] != wanted[k]]
    if diff:
        shown = "; ".join(f"{k} = {wanted[k]!r} (the store's documents were ingested with {stored[k]!r})" for k in diff)
        raise ConfigError(
            f"the recipe sets {shown}. {'These keys act' if len(diff) > 1 else 'That key acts'} while the WARCs are "
            "read, so applying it means re-reading them: ingest the crawls into a new store with this recipe "
            "(curate ingest PATHS --store NEW --recipe FILE), or drop the key from the recipe"
        )
    return recipe


def _tiers(con: Any, cutoff: dt.datetime) -> None:
    con.execute(
        f"""UPDATE documents SET tier = CASE
              WHEN warc_date IS NULL AND warc_date_until <= ? THEN '{Tier.PRE_CUTOFF}'
              WHEN warc_date IS NULL AND warc_date_from >= ? THEN '{Tier.POST_CUTOFF}'
              WHEN warc_date IS NULL THEN NULL
              WHEN warc_date < ? THEN '{Tier.PRE_CUTOFF}' ELSE '{Tier.POST_CUTOFF}' END""",
        [cutoff, cutoff, cutoff],
    )
    con.execute(
        f"""UPDATE documents SET tier = '{Tier.ATTESTED}'
            WHERE tier = '{Tier.POST_CUTOFF}' AND warc_payload_digest IS NOT NULL AND coalesce(payload_digest_ok, true)
              AND warc_payload_digest IN (
                SELECT warc_payload_digest FROM documents
                WHERE tier = '{Tier.PRE_CUTOFF}' AND coalesce(payload_digest_ok, true))"""
    )
    kinds = ", ".join(f"'{k}'" for k in ATTESTING_KINDS)
    con.execute(  # digest equality with a capture outside the store (curate attest), judged against this cutoff
        f"""UPDATE documents SET tier = '{Tier.ATTESTED}'
            WHERE (tier = '{Tier.POST_CUTOFF}' OR tier IS NULL) AND coalesce(payload_digest_ok, true)
              AND doc_id IN (SELECT doc_id FROM attestation_evidence
                             WHERE kind IN ({kinds}) AND strength = '{Strength.HARD}' AND flag IS NULL
                               AND fetch_time < ?)""",
        [cutoff],
    )


def _from_ingest(con: Any) -> None:
    """Start every record from what ingest found: its ingest reason, or undecided."""
    cases = " ".join(f"WHEN '{r}' THEN '{status_for(r)}'" for r in INGEST_REASONS)
    con.execute(
        f"""UPDATE documents SET status = CASE ingest_reason {cases} ELSE NULL END,
                   reason = ingest_reason, reason_detail = ingest_detail"""
    )
    # a revisit whose payload digest matches a response in the store points at it
    con.execute(
        f"""UPDATE documents SET reason_detail = (
              SELECT min(o.doc_id) FROM documents o
              WHERE o.warc_payload_digest = documents.warc_payload_digest AND o.record_type IN ('response', 'resource')
                AND coalesce(o.payload_digest_ok, true))
            WHERE reason = '{Reason.REVISIT_RECORD}' AND warc_payload_digest IN (
              SELECT warc_payload_digest FROM documents
              WHERE record_type IN ('response', 'resource') AND warc_payload_digest IS NOT NULL)"""
    )


def _drop(con: Any, reason: Reason, where: str, params: list[Any] | None = None, detail: str = "NULL") -> None:
    """Set ``reason`` on the undecided records matching ``where``; ``detail`` is an SQL expression."""
    con.execute(
        f"UPDATE documents SET status = '{status_for(reason)}', reason = '{reason}', reason_detail = {detail} "
        f"WHERE status IS NULL AND ({where})",
        params or [],
    )


def _drop_kept(con: Any, reason: Reason, where: str, params: list[Any] | None = None, detail: str = "NULL") -> int:
    """Set ``reason`` on the kept records matching ``where`` (a later rule overruling ``keep``); ``detail`` is an
    SQL expression. Returns how many records it dropped."""
    row = con.execute(
        f"UPDATE documents SET status = '{status_for(reason)}', reason = '{reason}', reason_detail = {detail} "
        f"WHERE status = '{Status.KEPT}' AND ({where})",
        params or [],
    ).fetchall()  # fetched to the end: a pending result would block registering a table on ``con``
    return int(row[0][0])


def _record_rules(con: Any, recipe: Recipe) -> None:
    """The per-record rules, first broken rule wins; what breaks none is kept."""
    e, o = recipe.extract, recipe.optout
    if recipe.read.truncated == "drop":
        cut = f"list_has_any(flags, ['{Flag.HTTP_TRUNCATED}', '{Flag.WARC_TRUNCATED}'])"
        _drop(con, Reason.TRUNCATED_PAYLOAD, f"coalesce({cut}, false)", detail="flag_detail")
    _drop(con, Reason.NO_TEXT, "coalesce(text_chars, 0) = 0", detail="ingest_detail")
    _drop(con, Reason.TOO_SHORT, "text_chars < ?", [e.min_chars])
    if e.languages:
        _drop(con, Reason.LANGUAGE_EXCLUDED, "language IS NULL OR NOT list_contains(?, language)", [e.languages])
    optout = " OR ".join(
        c for c, on in (("coalesce(optout, false)", o.honour), ("coalesce(optout_site, false)", o.honour_site)) if on
    )
    if optout:
        _drop(con, Reason.OPTED_OUT, optout)
    if not recipe.score.keep_unknown_date:
        _drop(con, Reason.DATE_UNKNOWN, "tier IS NULL")
    con.execute(f"UPDATE documents SET status = '{Status.KEPT}' WHERE status IS NULL")


def _reference(n: int, recipe: Recipe) -> tuple[Any, str | None, str]:
    """(the shipped reference's sorted scores, or None, source, how to name it) for the reference rule: source
    ``store`` (the scores stay in the store), ``shipped``, or None when no reference applies; ``n``: the size of
    the store's own reference (:func:`curate.score.contamination.store_reference_size`).

    Raises:
        ConfigError: ``score.reference = store`` with too few pre-cutoff captures, or ``shipped`` where the
            classifier ships no reference.
        ModelError: the shipped reference is corrupt or stale.
    """
    r = recipe.score
    build = f"curate classifiers reference {r.model} --data FILE"
    if r.reference == MgtReference.STORE or (r.reference == MgtReference.AUTO and n >= r.min_reference):
        if n < r.min_reference:
            raise ConfigError(
                f"score.reference = store, but the store has {n} pre-cutoff English captures, fewer than "
                f"score.min_reference = {r.min_reference}: set score.reference = auto or shipped (the classifier's "
                "reference of real pre-cutoff web pages), or ingest more pre-cutoff crawls"
            )
        return None, MgtReference.STORE.value, f"the store's {n} pre-cutoff captures"
    shipped = load_reference(r.model)
    why = (
        "score.reference = shipped"
        if r.reference == MgtReference.SHIPPED
        else f"the store has {n} pre-cutoff captures, fewer than score.min_reference = {r.min_reference}"
    )
    if shipped is None:
        if r.reference == MgtReference.SHIPPED:
            raise ConfigError(
                f"score.reference = shipped, but classifier {r.model} ships no reference.json: build it with "
                f"`{build}`, or set score.reference = auto"
            )
        return None, None, f"{why}, and {r.model} ships no reference ({build} builds one)"
    return shipped.scores, MgtReference.SHIPPED.value, f"{shipped.describe()}; {why}"


def _mgt_rule(con: Any, recipe: Recipe, decision_id: int) -> MgtRule:
    """The MGT rules on kept records: pre-cutoff extremes, then the page rule on post-cutoff (and, when kept,
    undated) records, then site-level evidence; returns what was applied."""
    r = recipe.score
    con.execute("UPDATE documents SET mgt_ref_pctl = NULL WHERE mgt_ref_pctl IS NOT NULL")
    early = f"tier IN ('{Tier.PRE_CUTOFF}', '{Tier.ATTESTED}') AND mgt_score >= {r.pre_cutoff_extreme}"
    n_extreme = int(con.execute(f"SELECT count(*) FROM documents WHERE {early}").fetchone()[0])
    n_early_dropped = 0
    if r.pre_cutoff_drop:
        detail = [f"pre-cutoff score >= score.pre_cutoff_extreme = {r.pre_cutoff_extreme}"]
        n_early_dropped = _drop_kept(con, Reason.MGT_PRE_CUTOFF_EXTREME, early, detail, "?")
    subject = f"(tier = '{Tier.POST_CUTOFF}'" + (" OR tier IS NULL)" if r.keep_unknown_date else ")")
    judged = f"record_type IS NOT NULL AND {subject}"
    n_store = store_reference_size(con)  # after the extremes are dropped: they leave the store's reference
    shipped, source, named = _reference(n_store, recipe) if r.rule == "reference" else (None, None, "")
    n_reference = 0
    if source is not None:
        n_reference = set_percentiles(con, shipped)  # None: the store's own, in SQL
        text = f"reference: score above the {r.reference_quantile:.2f} quantile of {named}"
        cond = f"mgt_ref_pctl >= {r.reference_quantile}"
    else:
        why = f" ({named})" if r.rule == "reference" else " (score.rule = probability)"
        text = f"probability: calibrated score >= {r.threshold}{why}"
        cond = f"mgt_score >= {r.threshold}"
    if not r.keep_unscored_post_cutoff:
        _drop_kept(con, Reason.POST_CUTOFF_UNSCORED, f"{judged} AND mgt_score IS NULL", detail="mgt_reason")
    _drop_kept(con, Reason.MGT_ABOVE_THRESHOLD, f"{judged} AND mgt_score IS NOT NULL AND {cond}", [text], "?")
    cut = r.reference_quantile if source is not None else None
    sites = site_rows(con, decision_id, min_pages=r.site_min_pages, alpha=r.site_alpha, cut=cut)
    write_site_scores(con, sites)
    shifted = [s["domain"] for s in sites if s["evidence"] == SiteEvidence.SHIFTED]
    site_dropped = 0
    if r.site_rule and source is not None and shifted:
        site_cond = (
            f"{judged} AND mgt_ref_pctl >= {r.site_quantile} "
            f"AND domain IN (SELECT domain FROM site_scores WHERE evidence = '{SiteEvidence.SHIFTED}')"
        )
        detail = [f"site shifted (site_scores) and score above the {r.site_quantile:.2f} quantile of the reference"]
        site_dropped = _drop_kept(con, Reason.MGT_SITE_SHIFT, site_cond, detail, "?")
        text += f"; site rule: pages of {len(shifted)} shifted sites above the {r.site_quantile:.2f} quantile"
    if r.pre_cutoff_drop:
        text += f"; pre-cutoff records scoring >= {r.pre_cutoff_extreme} dropped ({n_early_dropped})"
    return MgtRule(
        text,
        "reference" if source is not None else "probability",
        source,
        n_reference,
        n_store,
        n_extreme,
        n_early_dropped,
        len(shifted),
        site_dropped,
    )


def mgt_rule_lines(mgt: MgtRule, recipe: Recipe) -> list[str]:
    """What a command prints about the MGT rule a decision applied: the rule with the reference that decided
    (source, size, digests), pre-cutoff extreme scores, and the site-level evidence."""
    r = recipe.score
    if mgt.kind == "reference":
        ref = f"reference: {mgt.source}, {mgt.n_reference} scores (the store's own pre-cutoff: {mgt.n_store})"
    else:
        ref = f"reference: none (the store's own pre-cutoff: {mgt.n_store}); WARNING: the probability rule flags most human web pages (docs/mgt.md)"
    extreme = "dropped" if r.pre_cutoff_drop else "kept (score.pre_cutoff_drop = false)"
    return [
        f"MGT rule: {mgt.text}",
        f"  {ref}",
        f"  pre-cutoff records scoring >= {r.pre_cutoff_extreme}: {mgt.pre_cutoff_extreme}, {extreme}",
        f"  sites shifted against their own pre-cutoff pages: {mgt.sites_shifted}"
        + (
            f", {mgt.site_dropped} pages dropped (score.site_rule)"
            if r.site_rule
            else " (evidence only: score.site_rule = false)"
        ),
    ]


def _licenses(con: Any, recipe: Recipe) -> None:
    """The verdict in force: the tagger's, overridden per domain by the recipe's reviews (each kept as a
    ``domain-review`` evidence row); then the licence policy drops what it excludes."""
    con.execute(
        """UPDATE documents SET license_spdx = tagged_license_spdx, license_scope = tagged_license_scope,
                  license_confidence = tagged_license_confidence, license_conflict = tagged_license_conflict"""
    )
    con.execute("DELETE FROM license_evidence WHERE kind = 'domain-review'")
    if recipe.license.domain_review:
        for r in load_domain_reviews(Path(recipe.license.domain_review)):
            text = f"{r.verdict} by {r.reviewer} on {r.date.isoformat()}" + (f": {r.note}" if r.note else "")
            con.execute(
                """INSERT INTO license_evidence SELECT doc_id, 'domain-review', ?, ?, 'domain', ?, ?, ?
                   FROM documents WHERE domain = ? AND record_type IS NOT NULL ORDER BY doc_id""",
                [
                    text,
                    r.license_spdx,
                    "page" if r.verdict == "accept" else "unknown",
                    f"domain {r.domain}",
                    LICENSE_TAGGER_NAME,
                    r.domain,
                ],
            )
            if r.verdict == "accept":
                con.execute(
                    """UPDATE documents SET license_spdx = ?, license_scope = 'page', license_confidence = 1.0,
                       license_conflict = false WHERE domain = ?""",
                    [r.license_spdx, r.domain],
                )
            elif r.verdict == "reject":
                con.execute(
                    """UPDATE documents SET license_scope = 'unknown', license_confidence = 0.0
                       WHERE domain = ? AND license_spdx IS NOT NULL""",
                    [r.domain],
                )
    policy = get_policy(recipe.license.policy)
    excluded = [(d,) for d in excluded_documents(con, policy)]
    if excluded:
        con.executemany(
            f"UPDATE documents SET status = '{Status.DROPPED}', reason = '{Reason.LICENSE_POLICY}', "
            f"reason_detail = '{policy.name}' WHERE doc_id = ?",
            excluded,
        )


def _duplicates(con: Any) -> None:
    """In each dedup cluster the earliest kept capture represents; other kept members become ``duplicate_of``."""

    rows = con.execute(
        """SELECT doc_id, status, warc_date, tagged_license_scope, text_chars, text_hash, dup_cluster_id
           FROM documents WHERE dup_cluster_id IS NOT NULL ORDER BY doc_id"""
    ).fetchall()
    members = [Member(r[0], r[1] == Status.KEPT, r[2], r[3] == "page", r[4] or 0, r[5]) for r in rows]
    chosen = choose_representatives(members, {r[0]: r[6] for r in rows})
    kept = {r[0] for r in rows if r[1] == Status.KEPT}
    drop = sorted((d, rep) for d, (rep, _, kind) in chosen.items() if kind != "self" and d in kept)
    if not drop:
        return
    with registered(con, "dups", {"doc_id": [d for d, _ in drop], "rep": [r for _, r in drop]}):
        con.execute(
            f"""UPDATE documents SET status = '{Status.DROPPED}', reason = '{Reason.DUPLICATE_OF}', reason_detail = d.rep
                FROM dups d WHERE documents.doc_id = d.doc_id"""
        )


def decide_store(con: Any, recipe: Recipe, started: dt.datetime) -> Decision:
    """Apply ``recipe``'s keep rules to every record of the store behind ``con`` (inside the caller's
    transaction) and record the pass in ``decisions``.

    Raises:
        ConfigError: the recipe changes a key that only a new ingest can apply.
        CurateError: the counts do not reconcile (a bug, never expected).
    """
    recipe = check_ingest_settings(con, recipe)
    decision_id = int(con.execute("SELECT coalesce(max(decision_id), 0) + 1 FROM decisions").fetchone()[0])
    _tiers(con, recipe.cutoff_datetime)
    _from_ingest(con)
    _record_rules(con, recipe)
    mgt = _mgt_rule(con, recipe, decision_id)
    _licenses(con, recipe)
    _duplicates(con)
    con.execute(f"UPDATE documents SET decision_id = {decision_id}")
    c = counts(con)
    if c.read != c.kept + c.dropped + c.quarantined:
        raise CurateError(
            f"store does not reconcile: read={c.read} != kept+dropped+quarantined (+{c.pending} undecided)"
        )
    con.execute(
        "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            decision_id,
            SCHEMA_VERSION,
            started,
            dt.datetime.now(dt.UTC),
            recipe.name,
            recipe.version,
            recipe.digest,
            recipe.source,
            recipe.cutoff,
            mgt.text,
            c.read,
            c.kept,
            c.dropped,
            c.quarantined,
            json.dumps([list(x) for x in c.by_reason]),
        ],
    )
    return Decision(decision_id, c, mgt)
