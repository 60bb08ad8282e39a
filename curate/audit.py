"""Corpus audits for notebooks: the store's answers as pandas DataFrames and matplotlib figures.

Every store function takes a store (its folder, or its ``provenance.duckdb``), opens it read-only for the one
call and closes it again, so an audit never holds the store and never writes to it; a path that is not a store
of this schema raises :class:`curate.errors.StoreError` (:func:`curate.store.open_store`). A mix folder defaults
to ``<store folder>/mix`` (where ``curate run`` puts it). Figures are plain :class:`matplotlib.figure.Figure`
objects drawn on the non-interactive Agg canvas: no pyplot state, no window; a notebook shows them as they are
and a script calls ``fig.savefig(path)``. pandas and matplotlib are imported by the functions that need them.
Nothing here prints.

What is here, by question:

- the store: :func:`decision_history`, :func:`tiers_by_month`, :func:`score_histogram`, :func:`contamination`,
  :func:`license_mix`, :func:`top_domains`, :func:`reason_waterfall`, :func:`duplicate_clusters`,
  :func:`duplicate_cluster_sizes`;
- a mix: :func:`license_tokens`, :func:`bucket_samples`, :func:`token_provenance`, :func:`warc_headers`;
- legal review: :func:`license_evidence_by_domain`, :func:`license_evidence`, :func:`optout_evidence`,
  :func:`attribution_list`, :func:`policy_exclusions`, :func:`policy_preview`;
- a classifier on labelled texts: :func:`score_labelled`, :func:`labelled_metrics`, :func:`calibration_curve`,
  :func:`expected_calibration_error`, :func:`errors_by`;
- figures: :func:`plot_tiers_by_month`, :func:`plot_score_histogram`, :func:`plot_contamination`,
  :func:`plot_waterfall`, :func:`plot_calibration`, :func:`plot_scores_by_label`.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from curate.errors import InputError, StoreError
from curate.licenses.policy import excluded_documents, get_policy
from curate.licenses.spdx import license_by_spdx
from curate.mix import select_buckets
from curate.recipe import Recipe, recipe_from_source
from curate.schema import INGEST_REASONS, Reason, Status
from curate.score.contamination import contamination_table
from curate.score.labelled import read_labelled, split_rows
from curate.score.metrics import auroc, metrics
from curate.score.model import load_card
from curate.score.registry import load_model
from curate.score.text import MIN_WORDS, WINDOW, normalise, window_count
from curate.store import open_store, store_file

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

StoreLike = str | os.PathLike[str]
"""A store: its folder, or its ``provenance.duckdb`` file."""

SIDECAR = "sidecar.parquet"
DEFAULT_MODEL = "mgt-fasttext-v1"

WATERFALL_ORDER: tuple[Reason, ...] = (
    *INGEST_REASONS,
    Reason.NO_TEXT,
    Reason.TOO_SHORT,
    Reason.LANGUAGE_EXCLUDED,
    Reason.OPTED_OUT,
    Reason.DATE_UNKNOWN,
    Reason.POST_CUTOFF_UNSCORED,
    Reason.MGT_ABOVE_THRESHOLD,
    Reason.LICENSE_POLICY,
    Reason.DUPLICATE_OF,
)
"""Reasons in the order ``curate decide`` applies its rules (see :mod:`curate.decide`): the waterfall's steps."""

SCORE_GROUPS = {
    "tier": "coalesce(tier, 'unknown')",
    "crawl": "coalesce(crawl_id, 'no crawl id')",
    "status": "coalesce(status, 'undecided')",
}
"""What :func:`score_histogram` can group by, and the SQL of each group."""

CONTAMINATION_MIN_DOCS = {"crawl": 20, "month": 20, "domain": 10}
"""Smallest slice :func:`contamination` estimates by default (the provenance report's choice)."""


# --- the store ---------------------------------------------------------------------------------------------


def store_folder(store: StoreLike) -> Path:
    """The folder of a store given its folder or its ``provenance.duckdb``."""
    path = Path(store)
    return path.parent if path.suffix == ".duckdb" else path


def default_mix_dir(store: StoreLike) -> Path:
    """``<store folder>/mix``: where ``curate run`` writes the mix of the store it builds."""
    return store_folder(store) / "mix"


@contextlib.contextmanager
def _connect(store: StoreLike) -> Iterator[Any]:
    """The store opened read-only for one call, with capture months counted in UTC."""
    con = open_store(store_file(Path(store)))
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _df(con: Any, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    """A query's result as a DataFrame (LIST columns as Python lists)."""
    import numpy as np

    with warnings.catch_warnings():
        # DuckDB's own TIMESTAMPTZ conversion calls a pandas API that pandas 3.1 deprecates; nothing to act on
        warnings.filterwarnings("ignore", message="The inplace keyword")
        df = con.execute(sql, list(params or [])).df()
    for col in df.columns:
        if df[col].dtype == object and any(isinstance(v, np.ndarray) for v in df[col]):
            df[col] = [v.tolist() if isinstance(v, np.ndarray) else v for v in df[col]]
    return df


def _sidecar(store: StoreLike, mix_dir: StoreLike | None) -> Path | None:
    """The sidecar of ``mix_dir``, or of the store's ``mix/`` when there is one (else None).

    Raises:
        InputError: ``mix_dir`` is given and has no ``sidecar.parquet``.
    """
    if mix_dir is not None:
        return _required_sidecar(store, mix_dir)
    path = default_mix_dir(store) / SIDECAR
    return path if path.is_file() else None


def _required_sidecar(store: StoreLike, mix_dir: StoreLike | None) -> Path:
    """The sidecar of ``mix_dir`` (default: the store's ``mix/``).

    Raises:
        InputError: the folder has no ``sidecar.parquet``.
    """
    folder = Path(mix_dir) if mix_dir is not None else default_mix_dir(store)
    path = folder / SIDECAR
    if not path.is_file():
        raise InputError(f"{folder} is not a mix folder: {path} is missing (write one with `curate mix`)")
    return path


def _token_cte(sidecar: Path | None) -> tuple[str, list[Any]]:
    """SQL for a ``mix_tokens(doc_id, entries, tokens)`` CTE over the sidecar (empty without one) and its params."""
    if sidecar is None:
        return (
            "mix_tokens AS (SELECT NULL::VARCHAR AS doc_id, 0::BIGINT AS entries, 0::BIGINT AS tokens WHERE false)",
            [],
        )
    return (
        "mix_tokens AS (SELECT doc_id, count(*) AS entries, sum(token_end - token_start) AS tokens "
        "FROM read_parquet(?) GROUP BY doc_id)",
        [sidecar.as_posix()],
    )


def decided_recipe(store: StoreLike) -> Recipe:
    """The recipe of the store's latest decision pass (its cutoff, MGT model, licence policy and mix buckets).

    Raises:
        StoreError: not a store, or never decided (run ``curate decide`` first).
        ConfigError: the recorded recipe no longer validates (for example a file it names has moved).
    """
    with _connect(store) as con:
        row = con.execute("SELECT recipe_toml FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()
    if row is None:
        raise StoreError(f"the store {store_folder(store)} has not been decided yet: run `curate decide` first")
    return recipe_from_source(row[0])


def decision_history(store: StoreLike) -> pd.DataFrame:
    """Every decision pass of the store, oldest first: ``decision_id``, ``finished_at``, ``recipe_name``,
    ``recipe_version``, ``recipe_digest``, ``cutoff``, ``mgt_rule``, ``n_read``, ``n_kept``, ``n_dropped``,
    ``n_quarantined``. The last row is the decision every other function here reports on."""
    with _connect(store) as con:
        return _df(
            con,
            """SELECT decision_id, finished_at, recipe_name, recipe_version, recipe_digest, cutoff, mgt_rule,
                      n_read, n_kept, n_dropped, n_quarantined
               FROM decisions ORDER BY decision_id""",
        )


def tiers_by_month(store: StoreLike) -> pd.DataFrame:
    """Documents per low-background tier per capture month (UTC ``YYYY-MM`` of ``warc_date``).

    Columns: ``month``, ``tier``, ``documents``, ``kept``; one row per (month, tier) that has documents, in
    month then tier order. A record whose capture date is only known as an interval (a malformed WARC-Date whose
    year and month are certain: ``date_rule``) is counted under the month its interval starts in (UTC).
    Records without a tier (see ``date_reason``) have no month and are left out: :func:`reason_waterfall`
    counts them.
    """
    with _connect(store) as con:
        return _df(
            con,
            """SELECT strftime(coalesce(warc_date, warc_date_from), '%Y-%m') AS month,
                      tier, count(*) AS documents, count(*) FILTER (status = 'kept') AS kept
               FROM documents WHERE coalesce(warc_date, warc_date_from) IS NOT NULL AND tier IS NOT NULL
               GROUP BY ALL ORDER BY month, tier""",
        )


def score_histogram(
    store: StoreLike, by: Literal["tier", "crawl", "status"] = "tier", *, bins: int = 20, kept_only: bool = False
) -> pd.DataFrame:
    """Histogram of calibrated MGT scores (``mgt_score``, scored records only) per tier, crawl or status.

    ``bins`` equal-width bins over [0, 1] (a score of 1.0 falls in the last). Columns: ``group`` (tier, crawl id
    or status; ``unknown`` / ``no crawl id`` for NULL), ``bin`` (0-based), ``bin_low``, ``bin_high``,
    ``documents`` and ``share`` (of the group's scored documents); every group has every bin, empty ones at 0.

    Raises:
        ValueError: ``by`` is not one of :data:`SCORE_GROUPS`, or ``bins`` < 1.
    """
    if by not in SCORE_GROUPS:
        raise ValueError(f"by must be one of {', '.join(SCORE_GROUPS)}, not {by!r}")
    if int(bins) < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    n = int(bins)
    kept = f" AND status = '{Status.KEPT}'" if kept_only else ""
    with _connect(store) as con:
        df = _df(
            con,
            f"""WITH s AS (SELECT {SCORE_GROUPS[by]} AS grp, least(floor(mgt_score * {n}), {n - 1})::INTEGER AS b
                           FROM documents WHERE mgt_score IS NOT NULL{kept}),
                     g AS (SELECT DISTINCT grp FROM s),
                     r AS (SELECT range::INTEGER AS b FROM range({n}))
                SELECT g.grp AS "group", r.b AS bin, r.b / {n} AS bin_low, (r.b + 1) / {n} AS bin_high,
                       count(s.b) AS documents
                FROM g CROSS JOIN r LEFT JOIN s ON s.grp = g.grp AND s.b = r.b GROUP BY ALL ORDER BY 1, 2""",
        )
    totals = df.groupby("group")["documents"].transform("sum")
    df["share"] = df["documents"] / totals
    return df


def contamination(
    store: StoreLike,
    by: str | Sequence[str] = ("crawl", "month", "domain"),
    *,
    model: str | None = None,
    min_docs: int | None = None,
    limit: int = 30,
) -> pd.DataFrame:
    """Estimated share of model-generated text among the post-cutoff (and attested) scored documents, per crawl,
    capture month and/or domain, with 95% bootstrap intervals (:func:`curate.score.contamination.contamination_table`,
    the estimate the provenance report shows).

    ``model``: the classifier whose card holds the machine (and fallback human) score histograms; by default the
    decided recipe's ``score.model`` (the one that scored the store). ``min_docs``: the smallest slice estimated
    (default :data:`CONTAMINATION_MIN_DOCS`): a smaller slice is listed with its ``n`` and NaN estimates;
    ``limit``: the largest slices kept per ``by``. Columns: ``by``, ``group``, ``n``, ``share``, ``low``,
    ``high``, ``reference`` (where the human score distribution came from: the store's own pre-cutoff captures,
    or the classifier's validation texts when there are too few). Slices in ``by`` order, largest first.

    Raises:
        ValueError: an unknown ``by``, or a classifier card without reference histograms.
        ModelError: the classifier card is missing.
    """
    import pandas as pd

    kinds = [by] if isinstance(by, str) else list(by)
    for kind in kinds:
        if kind not in CONTAMINATION_MIN_DOCS:
            raise ValueError(f"by must be among {', '.join(CONTAMINATION_MIN_DOCS)}, not {kind!r}")
    name = model or decided_recipe(store).score.model
    card_hist = load_card(name).get("reference_histograms")
    rows: list[dict[str, Any]] = []
    with _connect(store) as con:
        for kind in kinds:
            least = CONTAMINATION_MIN_DOCS[kind] if min_docs is None else min_docs
            table, source = contamination_table(con, card_hist, kind, limit=limit, min_docs=least)
            rows += [{"by": kind, **r, "reference": source} for r in table]
    df = pd.DataFrame(rows, columns=["by", "group", "n", "share", "low", "high", "reference"])
    df[["share", "low", "high"]] = df[["share", "low", "high"]].astype(float)
    return df


def license_mix(store: StoreLike) -> pd.DataFrame:
    """Documents per page-licence verdict in force (``license_spdx``, ``license_scope``), all records.

    Columns: ``license_spdx`` and ``license_scope`` (None: no licence found), ``documents``, ``kept``,
    ``conflicting`` (signals disagree), and the licence's flags from the SPDX table (None when no licence):
    ``license_name``, ``attribution_required``, ``share_alike``, ``noncommercial``, ``no_derivatives``,
    ``open_definition``. Sorted by documents, most first.
    """
    with _connect(store) as con:
        df = _df(
            con,
            """SELECT license_spdx, license_scope, count(*) AS documents, count(*) FILTER (status = 'kept') AS kept,
                      count(*) FILTER (license_conflict) AS conflicting
               FROM documents GROUP BY ALL ORDER BY documents DESC, license_spdx NULLS LAST, license_scope NULLS LAST""",
        )
    return _with_license_flags(df)


def _with_license_flags(df: pd.DataFrame) -> pd.DataFrame:
    flags = ("attribution_required", "share_alike", "noncommercial", "no_derivatives", "open_definition")
    licenses = [license_by_spdx(s) if isinstance(s, str) else None for s in df["license_spdx"]]
    df["license_name"] = [lic.name if lic else None for lic in licenses]
    for flag in flags:
        df[flag] = [getattr(lic, flag) if lic else None for lic in licenses]
    return df


def license_tokens(store: StoreLike, mix_dir: StoreLike | None = None) -> pd.DataFrame:
    """Tokens of a mix per page-licence verdict in force in the store (the sidecar's entries joined to
    ``documents`` by ``doc_id``; a token range counts its end-of-text token, weighted copies count each time).

    Columns: ``license_spdx``, ``license_scope``, ``documents`` (distinct), ``entries`` (with copies),
    ``tokens``, ``token_share``, and the licence flags of :func:`license_mix`. Sorted by tokens, most first.

    Raises:
        InputError: ``mix_dir`` (default ``<store folder>/mix``) has no ``sidecar.parquet``.
    """
    sidecar = _required_sidecar(store, mix_dir)
    with _connect(store) as con:
        df = _df(
            con,
            """SELECT d.license_spdx, d.license_scope, count(DISTINCT s.doc_id) AS documents, count(*) AS entries,
                      sum(s.token_end - s.token_start)::BIGINT AS tokens
               FROM read_parquet(?) s LEFT JOIN documents d USING (doc_id)
               GROUP BY ALL ORDER BY tokens DESC, license_spdx NULLS LAST, license_scope NULLS LAST""",
            [sidecar.as_posix()],
        )
    total = df["tokens"].sum()
    df["token_share"] = df["tokens"] / total if total else 0.0
    return _with_license_flags(df)


def top_domains(
    store: StoreLike,
    n: int = 20,
    *,
    order_by: Literal["documents", "kept", "mix_tokens"] = "documents",
    mix_dir: StoreLike | None = None,
) -> pd.DataFrame:
    """The ``n`` domains with the most documents (or kept documents, or mix tokens).

    Columns: ``domain`` (None for records without a URL), ``documents``, ``kept``, ``dropped``, ``quarantined``,
    ``page_licensed`` (page-scope licence verdict), ``opted_out`` (record or site opt-out signal),
    ``mean_mgt_score`` (scored records), ``mix_tokens`` (0 when the store has no mix, or ``mix_dir`` says none).

    Raises:
        ValueError: an unknown ``order_by``.
        InputError: ``mix_dir`` is given but has no ``sidecar.parquet``.
    """
    if order_by not in ("documents", "kept", "mix_tokens"):
        raise ValueError(f"order_by must be documents, kept or mix_tokens, not {order_by!r}")
    cte, params = _token_cte(_sidecar(store, mix_dir))
    with _connect(store) as con:
        return _df(
            con,
            f"""WITH {cte}
                SELECT d.domain, count(*) AS documents, count(*) FILTER (d.status = 'kept') AS kept,
                       count(*) FILTER (d.status = 'dropped') AS dropped,
                       count(*) FILTER (d.status = 'quarantined') AS quarantined,
                       count(*) FILTER (d.license_scope = 'page') AS page_licensed,
                       count(*) FILTER (coalesce(d.optout, false) OR coalesce(d.optout_site, false)) AS opted_out,
                       avg(d.mgt_score) AS mean_mgt_score, coalesce(sum(t.tokens), 0)::BIGINT AS mix_tokens
                FROM documents d LEFT JOIN mix_tokens t USING (doc_id)
                GROUP BY d.domain ORDER BY {order_by} DESC, d.domain NULLS LAST LIMIT ?""",
            [*params, int(n)],
        )


def reason_waterfall(store: StoreLike, mix_dir: StoreLike | None = None) -> pd.DataFrame:
    """From records read to documents kept to documents in the mix, one step per reason in the order
    ``curate decide`` applies its rules (:data:`WATERFALL_ORDER`; reasons it does not know come last).

    Columns: ``step`` (``read``, ``<status>: <reason>``, ``kept``, ``not in the mix``, ``in the mix``),
    ``kind`` (read | removed | kept | not_mixed | mixed), ``status``, ``reason``, ``records`` (the step's count)
    and ``remaining`` (after the step): ``remaining`` of ``kept`` is read minus every removal. Only reasons
    that occur are steps. The mix steps come from ``mix_dir`` (default ``<store folder>/mix``, left out when
    there is none): documents in the sidecar that the store still keeps (weighted copies count once).

    Raises:
        StoreError: records without a status (ingested after the last ``curate decide``).
        InputError: ``mix_dir`` is given but has no ``sidecar.parquet``.
    """
    import pandas as pd

    sidecar = _sidecar(store, mix_dir)
    with _connect(store) as con:
        counts = {
            (status, reason): int(n)
            for status, reason, n in con.execute(
                "SELECT status, reason, count(*) FROM documents GROUP BY ALL"
            ).fetchall()
        }
        mixed = None
        if sidecar is not None:
            mixed = int(
                con.execute(
                    "SELECT count(DISTINCT doc_id) FROM read_parquet(?) s JOIN documents d USING (doc_id) "
                    "WHERE d.status = 'kept'",
                    [sidecar.as_posix()],
                ).fetchone()[0]
            )
    pending = sum(n for (status, _), n in counts.items() if status is None)
    if pending:
        raise StoreError(f"{pending} records of {store_folder(store)} have no status yet: run `curate decide` first")
    read = sum(counts.values())
    order = {r.value: i for i, r in enumerate(WATERFALL_ORDER)}
    removed = sorted(
        ((s, r, n) for (s, r), n in counts.items() if s != Status.KEPT),
        key=lambda x: (order.get(str(x[1]), len(order)), str(x[1]), str(x[0])),
    )
    rows: list[dict[str, Any]] = [
        {"step": "read", "kind": "read", "status": None, "reason": None, "records": read, "remaining": read}
    ]
    left = read
    for status, reason, n in removed:
        left -= n
        rows.append(
            {"step": f"{status}: {reason}", "kind": "removed", "status": status, "reason": reason}
            | {"records": n, "remaining": left}
        )
    kept = counts.get((Status.KEPT.value, None), 0)
    rows.append({"step": "kept", "kind": "kept", "status": "kept", "reason": None, "records": kept, "remaining": left})
    if mixed is not None:
        rows.append(
            {"step": "not in the mix", "kind": "not_mixed", "status": "kept", "reason": None}
            | {"records": kept - mixed, "remaining": mixed}
        )
        rows.append(
            {"step": "in the mix", "kind": "mixed", "status": "kept", "reason": None}
            | {"records": mixed, "remaining": mixed}
        )
    return pd.DataFrame(rows, columns=["step", "kind", "status", "reason", "records", "remaining"])


def duplicate_clusters(store: StoreLike) -> pd.DataFrame:
    """Every duplicate cluster (``documents.dup_cluster_id``: the doc_id of its earliest capture) and what
    ``curate decide`` kept of it.

    Columns: ``cluster_id``, ``members`` (records of the store in it), ``exact`` and ``near`` (members matching
    the anchor that way), ``kept`` (0 or 1: the representative when the keep rules left one), ``kept_doc_ids``,
    ``dropped_as_duplicate`` (reason ``duplicate_of``), ``representatives`` (their ``reason_detail``: the kept
    member they duplicate), ``dropped_other`` and ``other_reasons`` (members dropped or quarantined for another
    reason first), ``first_capture``, ``last_capture``, ``domains``. Largest clusters first.
    """
    with _connect(store) as con:
        return _df(
            con,
            """SELECT dup_cluster_id AS cluster_id, count(*) AS members,
                      count(*) FILTER (dup_kind = 'exact') AS exact, count(*) FILTER (dup_kind = 'near') AS near,
                      count(*) FILTER (status = 'kept') AS kept,
                      coalesce(list(doc_id ORDER BY doc_id) FILTER (status = 'kept'), []) AS kept_doc_ids,
                      count(*) FILTER (reason = 'duplicate_of') AS dropped_as_duplicate,
                      coalesce(list_sort(list(DISTINCT reason_detail) FILTER (reason = 'duplicate_of')), [])
                          AS representatives,
                      count(*) FILTER (status <> 'kept' AND reason <> 'duplicate_of') AS dropped_other,
                      coalesce(list_sort(list(DISTINCT reason) FILTER (status <> 'kept' AND reason <> 'duplicate_of')), [])
                          AS other_reasons,
                      min(warc_date) AS first_capture, max(warc_date) AS last_capture,
                      count(DISTINCT domain) AS domains
               FROM documents WHERE dup_cluster_id IS NOT NULL GROUP BY 1 ORDER BY members DESC, cluster_id""",
        )


def duplicate_cluster_sizes(store: StoreLike) -> pd.DataFrame:
    """How many duplicate clusters have each size: ``members``, ``clusters``, ``documents`` (members times clusters),
    ``kept`` (documents kept: at most one per cluster), ``clusters_nothing_kept`` (every member ruled out by an
    earlier rule). Smallest size first."""
    df = duplicate_clusters(store)
    df["nothing_kept"] = df["kept"] == 0
    out = (
        df.groupby("members")
        .agg(clusters=("cluster_id", "size"), kept=("kept", "sum"), clusters_nothing_kept=("nothing_kept", "sum"))
        .reset_index()
    )
    out["documents"] = out["members"] * out["clusters"]
    return out[["members", "clusters", "documents", "kept", "clusters_nothing_kept"]]


def bucket_samples(
    store: StoreLike, n: int = 5, *, seed: int = 0, mix_dir: StoreLike | None = None, text_chars: int = 300
) -> pd.DataFrame:
    """Up to ``n`` kept documents of each mix bucket of the store's latest decision recipe, with their evidence.

    Buckets are assigned by :func:`curate.mix.select_buckets` (each bucket's SQL checked and run sandboxed; a
    document goes to the first bucket it matches), then sampled with a seeded RNG (the same ``seed`` gives the
    same documents). Columns: ``bucket``, ``doc_id``, ``url``, ``domain``, ``warc_date``, ``crawl_id``, ``tier``,
    ``mgt_score``, ``mgt_ref_pctl``, ``language``, ``text_chars``, ``license_spdx``, ``license_scope``,
    ``license_conflict``, ``license_evidence`` (list of ``kind [spdx] @location: raw value``), ``optout``,
    ``optout_site``, ``optout_evidence`` (list of ``kind (source): raw value``), ``dup_cluster_id``,
    ``warc_file``, ``record_offset``, ``record_length``, ``warc_record_id``, ``mix_entries`` and ``mix_tokens``
    (0 when the weight sampled it out, or there is no mix), ``text`` (its first ``text_chars`` characters).

    Raises:
        StoreError: not a store, or never decided.
        ConfigError: a bucket's SQL is refused.
        InputError: ``mix_dir`` is given but has no ``sidecar.parquet``.
    """
    import duckdb
    import pandas as pd

    recipe = decided_recipe(store)
    sidecar = _sidecar(store, mix_dir)
    try:
        selected = select_buckets(store_file(Path(store)), recipe)
    except duckdb.ConnectionException as e:  # this process holds the file open with other settings
        raise StoreError(
            f"cannot open {store_file(Path(store))} for the bucket SQL while this process holds it open with "
            f"other settings ({e}); close that connection first"
        ) from None
    members: dict[str, list[str]] = {b.name: [] for b in recipe.mix.buckets}
    for bucket, doc_id in selected:
        members[bucket].append(doc_id)
    picked: list[tuple[str, str]] = []
    for bucket, ids in members.items():
        rng = random.Random(f"{seed}:{bucket}")
        picked += [(bucket, d) for d in sorted(rng.sample(sorted(ids), min(int(n), len(ids))))]
    columns = [
        "bucket",
        "doc_id",
        "url",
        "domain",
        "warc_date",
        "crawl_id",
        "tier",
        "mgt_score",
        "mgt_ref_pctl",
        "language",
        "text_chars",
        "license_spdx",
        "license_scope",
        "license_conflict",
        "license_evidence",
        "optout",
        "optout_site",
        "optout_evidence",
        "dup_cluster_id",
        "warc_file",
        "record_offset",
        "record_length",
        "warc_record_id",
        "mix_entries",
        "mix_tokens",
        "text",
    ]
    if not picked:
        return pd.DataFrame(columns=columns)
    cte, params = _token_cte(sidecar)
    with _connect(store) as con:
        df = _df(
            con,
            f"""WITH {cte},
                picked AS (SELECT unnest(?) AS bucket, unnest(?) AS doc_id),
                lic AS (SELECT doc_id, list(kind || coalesce(' [' || spdx_id || ']', '') || ' @' || coalesce(location, '?')
                                             || ': ' || coalesce(raw_value, '') ORDER BY kind, raw_value) AS license_evidence
                        FROM license_evidence GROUP BY doc_id),
                opt AS (SELECT doc_id, list(kind || ' (' || coalesce(source, '?') || '): ' || coalesce(raw_value, '')
                                             ORDER BY kind, raw_value) AS optout_evidence
                        FROM optout_evidence GROUP BY doc_id)
                SELECT p.bucket, d.doc_id, d.url, d.domain, d.warc_date, d.crawl_id, d.tier, d.mgt_score, d.mgt_ref_pctl,
                       d.language, d.text_chars, d.license_spdx, d.license_scope, d.license_conflict,
                       coalesce(lic.license_evidence, []) AS license_evidence, d.optout, d.optout_site,
                       coalesce(opt.optout_evidence, []) AS optout_evidence, d.dup_cluster_id, d.warc_file,
                       d.record_offset, d.record_length, d.warc_record_id, coalesce(t.entries, 0) AS mix_entries,
                       coalesce(t.tokens, 0)::BIGINT AS mix_tokens, left(x.text, ?) AS text
                FROM picked p JOIN documents d USING (doc_id) LEFT JOIN texts x USING (doc_id)
                LEFT JOIN lic USING (doc_id) LEFT JOIN opt USING (doc_id) LEFT JOIN mix_tokens t USING (doc_id)
                ORDER BY list_position(?, p.bucket), d.doc_id""",
            [
                *params,
                [b for b, _ in picked],
                [d for _, d in picked],
                int(text_chars),
                [b.name for b in recipe.mix.buckets],
            ],
        )
    return df[columns]


def token_provenance(store: StoreLike, shard: str, token: int, mix_dir: StoreLike | None = None) -> dict[str, Any]:
    """Where token number ``token`` of mix shard ``shard`` (e.g. ``mix_00000.ds``) came from: its
    sidecar entry (token range, bucket, WARC file, offset, length, record id, URL) with the document's status,
    tier, licence and MGT score in the store now.

    Raises:
        InputError: no sidecar, or no entry of ``shard`` covers ``token``.
    """
    sidecar = _required_sidecar(store, mix_dir)
    with _connect(store) as con:
        df = _df(
            con,
            """SELECT s.shard, s.token_start, s.token_end, s.bucket, s.copy, s.doc_id, s.warc_file, s.record_offset,
                      s.record_length, s.warc_record_id, s.url, s.warc_date, d.status, d.tier, d.license_spdx,
                      d.license_scope, d.mgt_score
               FROM read_parquet(?) s LEFT JOIN documents d USING (doc_id)
               WHERE s.shard = ? AND ? >= s.token_start AND ? < s.token_end""",
            [sidecar.as_posix(), shard, int(token), int(token)],
        )
    if df.empty:
        raise InputError(f"no entry of {sidecar} covers token {token} of shard {shard!r}")
    return {k: (None if _is_missing(v) else v) for k, v in df.iloc[0].to_dict().items()}


def _is_missing(value: Any) -> bool:
    """Whether a DataFrame cell is NULL (None, NaN, NaT, pd.NA); a list never is."""
    import pandas as pd

    if isinstance(value, list | tuple | dict | str):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def warc_headers(warc_file: StoreLike, offset: int, length: int) -> dict[str, str]:
    """The WARC headers of the record at byte ``offset`` (``length`` bytes, one gzip member or plain) of a local
    WARC file: read exactly those bytes, as a reviewer following a sidecar entry would.

    Raises:
        InputError: the file cannot be read, or holds no WARC record there.
    """
    import io

    from warcio.archiveiterator import ArchiveIterator

    try:
        with open(warc_file, "rb") as fh:
            fh.seek(int(offset))
            data = fh.read(int(length))
        record = next(iter(ArchiveIterator(io.BytesIO(data))), None)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read a WARC record at {offset} of {warc_file}: {e}") from None
    if record is None:
        raise InputError(f"no WARC record at byte {offset} of {warc_file}")
    return {str(k): str(v) for k, v in record.rec_headers.headers}


# --- legal review ----------------------------------------------------------------------------------------------


def license_evidence_by_domain(store: StoreLike) -> pd.DataFrame:
    """Licence and opt-out evidence per domain, for a legal reviewer's first pass.

    Columns: ``domain``, ``documents``, ``kept``, ``page_licensed`` (page-scope verdict), ``licenses`` (the
    SPDX ids in force, sorted), ``conflicting``, ``license_evidence_rows`` and ``license_evidence_kinds``,
    ``optout_record`` (records carrying an opt-out), ``optout_site`` (site snapshot opts out),
    ``optout_evidence_rows`` and ``optout_kinds``, ``dropped_opted_out``, ``dropped_license_policy``. Records
    without a domain are left out. Most documents first.
    """
    with _connect(store) as con:
        return _df(
            con,
            """WITH ev AS (SELECT d.domain, count(*) AS n, list_sort(list(DISTINCT e.kind)) AS kinds
                           FROM license_evidence e JOIN documents d USING (doc_id) GROUP BY 1),
                    oo AS (SELECT d.domain, count(*) AS n, list_sort(list(DISTINCT o.kind)) AS kinds
                           FROM optout_evidence o JOIN documents d USING (doc_id) GROUP BY 1),
                    dd AS (SELECT domain, count(*) AS documents, count(*) FILTER (status = 'kept') AS kept,
                                  count(*) FILTER (license_scope = 'page') AS page_licensed,
                                  coalesce(list_sort(list(DISTINCT license_spdx) FILTER (license_spdx IS NOT NULL)), [])
                                      AS licenses,
                                  count(*) FILTER (license_conflict) AS conflicting,
                                  count(*) FILTER (optout) AS optout_record,
                                  count(*) FILTER (optout_site) AS optout_site,
                                  count(*) FILTER (reason = 'opted_out') AS dropped_opted_out,
                                  count(*) FILTER (reason = 'license_policy') AS dropped_license_policy
                           FROM documents WHERE domain IS NOT NULL GROUP BY 1)
               SELECT dd.domain, dd.documents, dd.kept, dd.page_licensed, dd.licenses, dd.conflicting,
                      coalesce(ev.n, 0) AS license_evidence_rows, coalesce(ev.kinds, []) AS license_evidence_kinds,
                      dd.optout_record, dd.optout_site, coalesce(oo.n, 0) AS optout_evidence_rows,
                      coalesce(oo.kinds, []) AS optout_kinds, dd.dropped_opted_out, dd.dropped_license_policy
               FROM dd LEFT JOIN ev USING (domain) LEFT JOIN oo USING (domain)
               ORDER BY dd.documents DESC, dd.domain""",
        )


def license_evidence(store: StoreLike, *, domain: str | None = None, kept_only: bool = False) -> pd.DataFrame:
    """Every licence evidence row (what was found, where, by which tagger) with its document's verdict, status
    and WARC coordinates; only ``domain``'s when given, only kept documents' with ``kept_only``.

    Columns: ``domain``, ``url``, ``doc_id``, ``status``, ``license_spdx`` and ``license_scope`` (the verdict
    in force), ``kind``, ``raw_value``, ``spdx_id``, ``location``, ``scope``, ``snippet``, ``tagger``,
    ``warc_file_name``, ``record_offset``, ``record_length``, ``warc_record_id``.
    """
    with _connect(store) as con:
        return _df(
            con,
            """SELECT d.domain, d.url, d.doc_id, d.status, d.license_spdx, d.license_scope, e.kind, e.raw_value,
                      e.spdx_id, e.location, e.scope, e.snippet, e.tagger, d.warc_file_name, d.record_offset,
                      d.record_length, d.warc_record_id
               FROM license_evidence e JOIN documents d USING (doc_id)
               WHERE (?::VARCHAR IS NULL OR d.domain = ?) AND (NOT ? OR d.status = 'kept')
               ORDER BY d.domain, d.doc_id, e.kind, e.raw_value""",
            [domain, domain, bool(kept_only)],
        )


def optout_evidence(store: StoreLike, *, domain: str | None = None) -> pd.DataFrame:
    """Every AI/TDM opt-out signal (header or meta value, the crawler it names, when and where it was seen)
    with its document's status and reason; only ``domain``'s when given.

    Columns: ``domain``, ``url``, ``doc_id``, ``status``, ``reason``, ``kind``, ``raw_value``, ``agent``,
    ``source`` (record | site-snapshot), ``observed_at``, ``tagger``, ``warc_file_name``, ``record_offset``.
    """
    with _connect(store) as con:
        return _df(
            con,
            """SELECT d.domain, d.url, d.doc_id, d.status, d.reason, o.kind, o.raw_value, o.agent, o.source,
                      o.observed_at, o.tagger, d.warc_file_name, d.record_offset
               FROM optout_evidence o JOIN documents d USING (doc_id)
               WHERE (?::VARCHAR IS NULL OR d.domain = ?)
               ORDER BY d.domain, o.observed_at, d.doc_id, o.kind""",
            [domain, domain],
        )


def attribution_list(store: StoreLike, mix_dir: StoreLike | None = None) -> pd.DataFrame:
    """The documents of a mix whose page licence requires attribution: the rows of the mix's
    ``ATTRIBUTION.md``, as data (the sidecar's documents joined to licences whose ``attribution_required``
    flag is set, page or partial scope, as :mod:`curate.mix` writes the file).

    Columns: ``doc_id``, ``title``, ``author``, ``site_name``, ``url``, ``license_spdx``, ``license_name``,
    ``license_url``, ``license_scope``, ``warc_date``, ``warc_record_id``, ``warc_file_name``,
    ``record_offset``, ``record_length``, ``mix_entries``, ``mix_tokens``; unknown fields are None, never
    guessed. In ``doc_id`` order.

    Raises:
        InputError: ``mix_dir`` (default ``<store folder>/mix``) has no ``sidecar.parquet``.
    """
    sidecar = _required_sidecar(store, mix_dir)
    cte, params = _token_cte(sidecar)
    with _connect(store) as con:
        df = _df(
            con,
            f"""WITH {cte}
                SELECT d.doc_id, d.title, d.author, d.site_name, d.url, d.license_spdx, d.license_url, d.license_scope,
                       d.warc_date, d.warc_record_id, d.warc_file_name, d.record_offset, d.record_length,
                       t.entries AS mix_entries, t.tokens::BIGINT AS mix_tokens
                FROM mix_tokens t JOIN documents d USING (doc_id)
                WHERE d.license_scope IN ('page', 'partial') AND d.license_spdx IS NOT NULL ORDER BY d.doc_id""",
            params,
        )
    licenses = [license_by_spdx(s) for s in df["license_spdx"]]
    keep = [lic is not None and lic.attribution_required for lic in licenses]
    df.insert(6, "license_name", [lic.name if lic else None for lic in licenses])
    return df[keep].reset_index(drop=True)


def policy_exclusions(store: StoreLike) -> pd.DataFrame:
    """The documents the licence policy of the last ``curate decide`` excluded (reason ``license_policy``).

    Columns: ``doc_id``, ``url``, ``domain``, ``policy`` (``reason_detail``: the policy's name),
    ``license_spdx``, ``license_scope``, ``license_conflict`` (the verdict in force), ``tagged_license_spdx``
    and ``tagged_license_scope`` (the tagger's, before any domain review), ``license_signals``,
    ``warc_file_name``, ``record_offset``, ``record_length``. In ``doc_id`` order.
    """
    with _connect(store) as con:
        return _df(
            con,
            f"""SELECT doc_id, url, domain, reason_detail AS policy, license_spdx, license_scope, license_conflict,
                       tagged_license_spdx, tagged_license_scope, license_signals, warc_file_name, record_offset,
                       record_length
                FROM documents WHERE reason = '{Reason.LICENSE_POLICY}' ORDER BY doc_id""",
        )


def policy_preview(store: StoreLike, policy: str) -> pd.DataFrame:
    """The kept documents that licence policy ``policy`` (a name from ``licenses/policies.toml``) would
    exclude, judged on their verdicts in force (:meth:`curate.licenses.policy.Policy.admits`), without deciding.

    A preview: ``curate decide`` with that policy applies it before choosing duplicate representatives, so it
    can also exclude members now dropped as ``duplicate_of`` (and keep another member in their place).
    Columns: ``doc_id``, ``url``, ``domain``, ``license_spdx``, ``license_scope``, ``license_conflict``,
    ``license_name``. In ``doc_id`` order.

    Raises:
        ConfigError: no such policy (the message lists the known ones).
    """
    rule = get_policy(policy)
    with _connect(store) as con:
        df = _df(
            con,
            """SELECT doc_id, url, domain, license_spdx, license_scope, license_conflict
               FROM documents WHERE status = 'kept' ORDER BY doc_id""",
        )
        excluded = set(excluded_documents(con, rule))
    out = df[df["doc_id"].isin(excluded)].reset_index(drop=True)
    licenses = [license_by_spdx(s) if isinstance(s, str) else None for s in out["license_spdx"]]
    out["license_name"] = [lic.name if lic else None for lic in licenses]
    return out


# --- a classifier on labelled texts ----------------------------------------------------------------------------


def _length_group(words: int) -> str:
    """The length groups of :func:`curate.score.metrics.metrics` (``per_length``)."""
    long_words = WINDOW + WINDOW // 2
    if window_count(words) == 1:
        return f"1 window ({MIN_WORDS}-{long_words} words)"
    return f"2+ windows (over {long_words} words)"


def score_labelled(
    data: StoreLike | Sequence[dict[str, Any]],
    model: str = DEFAULT_MODEL,
    *,
    validation_only: bool = False,
    language: str | None = "en",
    device: str = "auto",
) -> pd.DataFrame:
    """Score labelled texts with a registered classifier, as the pipeline scores pages
    (:meth:`curate.score.model.MgtModel.score_many`).

    ``data``: a labelled JSONL(.gz) file or its rows; each row has ``text`` and ``label`` (human | machine), and
    may have ``generator``, ``domain``, ``id``, ``language``. ``validation_only``: keep only the rows of the
    grouped validation split (:func:`curate.score.labelled.split_rows`): use it on rows from the classifiers'
    own training data, whose other rows they were fitted on. ``language``: the language of rows without a
    ``language`` field (None: detect it per text, as ingest does). ``device``: for transformer classifiers.

    Columns: ``id``, ``label``, ``machine`` (bool), ``generator``, ``domain``, ``words`` (normalised words),
    ``length`` (the window-count groups of the classifier cards), ``score`` (calibrated P(machine); NaN when
    not scored), ``reason`` (why not), ``windows``, ``text``. Rows in input order.

    Raises:
        ModelError: the classifier, or the labelled file, cannot be read.
    """
    import pandas as pd

    rows = read_labelled(Path(data)) if isinstance(data, str | os.PathLike) else [dict(r) for r in data]
    if validation_only:
        rows = split_rows(rows)[1]
    scorer = load_model(model, device)
    texts = [str(r["text"]) for r in rows]
    scored = scorer.score_many(texts, [r.get("language") or language for r in rows])
    words = [len(normalise(t)) for t in texts]
    return pd.DataFrame(
        {
            "id": [r.get("id") for r in rows],
            "label": [r["label"] for r in rows],
            "machine": [r["label"] == "machine" for r in rows],
            "generator": [str(r.get("generator")) for r in rows],
            "domain": [str(r.get("domain")) for r in rows],
            "words": words,
            "length": [_length_group(w) for w in words],
            "score": [float("nan") if s is None else s for s, _, _ in scored],
            "reason": [None if why is None else str(why) for _, why, _ in scored],
            "windows": [n for _, _, n in scored],
            "text": texts,
        }
    )


def _scored(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[scored["score"].notna()]


def labelled_metrics(scored: pd.DataFrame) -> dict[str, Any]:
    """The classifier cards' metrics (:func:`curate.score.metrics.metrics`) on the scored rows of
    :func:`score_labelled`: ``n``, ``auroc``, ``tpr_at_1pct_fpr``, ``tpr_at_5pct_fpr``, ``ece``, and
    ``per_generator``, ``per_domain``, ``per_length`` blocks; plus ``unscored`` (rows with no score)."""
    s = _scored(scored)
    rows = [
        {"label": lab, "generator": g, "domain": d}
        for lab, g, d in zip(s["label"], s["generator"], s["domain"], strict=True)
    ]
    out = metrics(
        [bool(m) for m in s["machine"]],
        [float(p) for p in s["score"]],
        rows,
        [normalise(str(t)) for t in s["text"]],
    )
    out["unscored"] = int(len(scored) - len(s))
    return out


def calibration_curve(scored: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Reliability table of :func:`score_labelled`'s scored rows: ``bins`` equal-width score bins (the bins of
    the cards' expected calibration error) with ``n``, ``mean_score`` and ``machine_share`` (NaN where empty).
    ``sum(n / N * |mean_score - machine_share|)`` over the bins is :func:`labelled_metrics`' ``ece``.

    Columns: ``bin``, ``bin_low``, ``bin_high``, ``n``, ``mean_score``, ``machine_share``.
    """
    import numpy as np
    import pandas as pd

    s = _scored(scored)
    p = s["score"].to_numpy(dtype=float)
    y = s["machine"].to_numpy(dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        rows.append(
            {
                "bin": b,
                "bin_low": b / bins,
                "bin_high": (b + 1) / bins,
                "n": int(m.sum()),
                "mean_score": float(p[m].mean()) if m.any() else float("nan"),
                "machine_share": float(y[m].mean()) if m.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(curve: pd.DataFrame) -> float:
    """The expected calibration error of a :func:`calibration_curve` table."""
    full = curve[curve["n"] > 0]
    total = full["n"].sum()
    return float((full["n"] / total * (full["mean_score"] - full["machine_share"]).abs()).sum()) if total else 0.0


def errors_by(
    scored: pd.DataFrame, by: Literal["generator", "domain", "length"] = "generator", *, threshold: float = 0.5
) -> pd.DataFrame:
    """Where the classifier errs at ``threshold`` (a record is called machine when its score is at or above it,
    as the recipe's ``probability`` rule does), per generator, domain or length group of :func:`score_labelled`.

    Columns: ``group``, ``n``, ``humans``, ``machines``, ``false_positives`` (humans called machine),
    ``false_negatives`` (machine texts missed), ``fpr``, ``fnr`` (NaN without humans / machines),
    ``error_rate``, ``mean_score``, ``auroc`` (NaN with one class only). By generator, each generator's group
    holds its machine texts and ``human`` the humans; its ``auroc`` is against every human text, as on the cards.

    Raises:
        ValueError: an unknown ``by``.
    """
    import pandas as pd

    if by not in ("generator", "domain", "length"):
        raise ValueError(f"by must be generator, domain or length, not {by!r}")
    s = _scored(scored)
    humans = s[~s["machine"]]
    rows = []
    for group, g in s.groupby(by, sort=True):
        called = g["score"] >= threshold
        h, m = int((~g["machine"]).sum()), int(g["machine"].sum())
        fp, fn = int((called & ~g["machine"]).sum()), int((~called & g["machine"]).sum())
        test = pd.concat([humans, g]) if by == "generator" and m and not h else g
        a = auroc(list(test["machine"]), list(test["score"]))
        rows.append(
            {
                "group": group,
                "n": len(g),
                "humans": h,
                "machines": m,
                "false_positives": fp,
                "false_negatives": fn,
                "fpr": fp / h if h else float("nan"),
                "fnr": fn / m if m else float("nan"),
                "error_rate": (fp + fn) / len(g),
                "mean_score": float(g["score"].mean()),
                "auroc": a if math.isnan(a) else round(a, 4),
            }
        )
    return pd.DataFrame(rows)


# --- figures ---------------------------------------------------------------------------------------------------


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    """A figure on the non-interactive Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_tiers_by_month(df: pd.DataFrame, *, kept_only: bool = False) -> Figure:
    """Stacked bars of :func:`tiers_by_month`: documents (or kept documents) per capture month, by tier."""
    import pandas as pd

    column = "kept" if kept_only else "documents"
    wide = df.pivot_table(index="month", columns="tier", values=column, aggfunc="sum", fill_value=0).sort_index()
    if len(wide):  # every month from the first to the last capture, so the x axis is time
        months = pd.period_range(str(wide.index[0]), str(wide.index[-1]), freq="M").strftime("%Y-%m")
        wide = wide.reindex(list(months), fill_value=0)
    fig = _figure(max(8.0, len(wide) * 0.12), 4.0)
    ax = fig.subplots()
    bottom = [0.0] * len(wide)
    x = list(range(len(wide)))
    for tier in wide.columns:
        values = [float(v) for v in wide[tier]]
        ax.bar(x, values, bottom=bottom, label=str(tier), width=0.9)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(wide) // 20)
    ax.set_xticks(x[::step], [str(m) for m in wide.index[::step]], rotation=90)
    ax.set_ylabel("kept documents" if kept_only else "documents")
    ax.set_title("Low-background tiers by capture month")
    ax.legend()
    return fig


def plot_score_histogram(df: pd.DataFrame) -> Figure:
    """One step line per group of :func:`score_histogram` (share of the group's scored documents per bin)."""
    fig = _figure()
    ax = fig.subplots()
    for group, g in df.groupby("group", sort=True):
        edges = [*g["bin_low"], float(g["bin_high"].iloc[-1])]
        ax.stairs(list(g["share"]), edges, label=f"{group} (n={int(g['documents'].sum())})")
    ax.set_xlabel("calibrated P(model-generated)")
    ax.set_ylabel("share of scored documents")
    ax.set_xlim(0, 1)
    ax.legend()
    return fig


def plot_contamination(df: pd.DataFrame) -> Figure:
    """Estimated machine share with its 95% interval, one panel per ``by`` of :func:`contamination` (slices
    without an estimate are left out)."""
    kinds = list(dict.fromkeys(df["by"])) or ["crawl"]
    heights = [max(1.5, 0.3 * max(1, int(((df["by"] == k) & df["share"].notna()).sum()))) for k in kinds]
    fig = _figure(8.0, sum(heights) + 0.5 * len(kinds))
    axes = fig.subplots(len(kinds), 1, squeeze=False, height_ratios=heights)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        d = df[(df["by"] == kind) & df["share"].notna()]
        y = list(range(len(d)))
        share = [float(v) for v in d["share"]]
        err = [
            [s - float(lo) for s, lo in zip(share, d["low"], strict=True)],
            [float(hi) - s for s, hi in zip(share, d["high"], strict=True)],
        ]
        ax.errorbar(share, y, xerr=err, fmt="o", capsize=3)
        ax.set_yticks(y, [f"{g} (n={n})" for g, n in zip(d["group"], d["n"], strict=True)])
        ax.set_xlim(-0.02, 1.02)
        ax.invert_yaxis()
        ax.set_title(f"estimated model-generated share by {kind}")
    return fig


def plot_waterfall(df: pd.DataFrame) -> Figure:
    """Horizontal waterfall of :func:`reason_waterfall`: each removal as a bar from what remained before it."""
    fig = _figure(8.0, max(3.0, 0.35 * len(df) + 1))
    ax = fig.subplots()
    y = list(range(len(df)))
    for i, row in enumerate(df.itertuples(index=False)):
        if row.kind in ("removed", "not_mixed"):
            ax.barh(i, row.records, left=row.remaining, color="tab:red")
        else:
            ax.barh(i, row.remaining, color="tab:blue" if row.kind == "read" else "tab:green")
        ax.text(row.remaining + (row.records if row.kind in ("removed", "not_mixed") else 0), i, f" {row.records}")
    ax.set_yticks(y, list(df["step"]))
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.set_title("From records read to documents kept and mixed")
    return fig


def plot_calibration(curve: pd.DataFrame) -> Figure:
    """Reliability diagram of :func:`calibration_curve`: machine share against mean score per bin."""
    fig = _figure(5.0, 5.0)
    ax = fig.subplots()
    full = curve[curve["n"] > 0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(list(full["mean_score"]), list(full["machine_share"]), marker="o", label="classifier")
    ax.set_xlabel("mean calibrated score")
    ax.set_ylabel("share of machine texts")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend()
    return fig


def plot_scores_by_label(scored: pd.DataFrame, *, bins: int = 20) -> Figure:
    """Histograms of :func:`score_labelled`'s scores for human and machine texts."""
    fig = _figure()
    ax = fig.subplots()
    s = _scored(scored)
    edges = [i / bins for i in range(bins + 1)]
    for label in ("human", "machine"):
        values = [float(v) for v in s.loc[s["label"] == label, "score"]]
        ax.hist(values, bins=edges, alpha=0.6, label=f"{label} (n={len(values)})")
    ax.set_xlabel("calibrated P(model-generated)")
    ax.set_ylabel("texts")
    ax.legend()
    return fig
