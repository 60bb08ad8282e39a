"""Inclusion policies, domain reviews and site-level opt-out snapshots, on their own and through a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.licenses.policy import get_policy, load_domain_reviews, load_policies
from curate.licenses.site_optout import SiteSignals
from curate.licenses.tagger import page_claims, tag_html
from curate.recipe import load_recipe
from curate.resources import SAMPLE_DIR


def test_policies() -> None:
    open_ = get_policy("open")
    assert open_.admits("CC-BY-4.0", "page", False)
    assert open_.admits("LicenseRef-CC-BY-SA-3.0-ES", "page", False)
    assert not open_.admits("CC-BY-NC-4.0", "page", False)
    assert not open_.admits("CC-BY-4.0", "media", False)
    assert not open_.admits("CC-BY-4.0", "page", True)
    assert not open_.admits(None, None, None)
    no_nc = get_policy("no-nc-nd")
    assert no_nc.admits(None, None, None) and not no_nc.admits("CC-BY-ND-4.0", "page", False)
    assert get_policy("record").admits("CC-BY-NC-ND-4.0", "page", True)
    with pytest.raises(ConfigError, match="known: no-nc-nd, open, record"):
        get_policy("lenient")


# Verdicts a policy meets: (spdx shown, scope, conflict, claims = licences page signals claim for the text)
VERDICTS = {
    "page-open": ("CC-BY-4.0", "page", False, ("CC-BY-4.0",)),
    "page-nc": ("CC-BY-NC-4.0", "page", False, ("CC-BY-NC-4.0",)),
    "page-nd": ("CC-BY-ND-4.0", "page", False, ("CC-BY-ND-4.0",)),
    # the tagger shows the most restrictive candidate of a conflict; the claims hold both
    "conflict-by-vs-nc": ("CC-BY-NC-4.0", "unknown", True, ("CC-BY-4.0", "CC-BY-NC-4.0")),
    # a caller that shows the permissive one must still be excluded: the NC claim decides
    "conflict-shown-permissive": ("CC-BY-4.0", "unknown", True, ("CC-BY-4.0", "CC-BY-NC-4.0")),
    "conflict-open-open": ("CC-BY-SA-4.0", "unknown", True, ("CC-BY-4.0", "CC-BY-SA-4.0")),
    "partial-nc-part": ("CC-BY-4.0", "partial", False, ("CC-BY-4.0", "CC-BY-NC-4.0")),
    "page-with-nc-photo": ("CC-BY-4.0", "page", False, ("CC-BY-4.0",)),  # the photo's NC is media: no claim
    "media-only-nc": ("CC-BY-NC-4.0", "media", False, ()),
    "unknown-badge-nc": ("CC-BY-NC-4.0", "unknown", False, ()),
    "none": (None, None, None, ()),
}
ADMITTED = {  # policy -> verdicts it keeps; every other verdict is excluded
    "record": set(VERDICTS),
    "no-nc-nd": {"page-open", "conflict-open-open", "page-with-nc-photo", "media-only-nc", "unknown-badge-nc", "none"},
    "open": {"page-open", "page-with-nc-photo"},
}


def test_every_policy_against_every_kind_of_verdict() -> None:
    assert set(ADMITTED) == set(load_policies()), "a policy in licenses/policies.toml has no row here"
    for name, keeps in ADMITTED.items():
        policy = get_policy(name)
        for verdict, (spdx, scope, conflict, claims) in VERDICTS.items():
            assert policy.admits(spdx, scope, conflict, claims) == (verdict in keeps), (name, verdict)


def test_conflicting_metas_from_the_issue() -> None:
    """<meta name=license> NC next to <link rel=license> BY: never shown as the permissive one, excluded by NC."""
    v = tag_html(
        """<html><head><meta name="license" content="https://creativecommons.org/licenses/by-nc/4.0/">
        <link rel="license" href="https://creativecommons.org/licenses/by/4.0/"></head><body><p>x</p></body></html>"""
    )
    assert (v.spdx_id, v.scope, v.conflict) == ("CC-BY-NC-4.0", "unknown", True)
    claims = page_claims(v.evidence)
    assert claims == {"CC-BY-4.0", "CC-BY-NC-4.0"}
    assert not get_policy("no-nc-nd").admits(v.spdx_id, v.scope, v.conflict, claims)
    assert not get_policy("open").admits(v.spdx_id, v.scope, v.conflict, claims)
    assert get_policy("record").admits(v.spdx_id, v.scope, v.conflict, claims)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_domain_review_validation(tmp_path: Path) -> None:
    head = "domain,verdict,license_spdx,reviewer,date,note\n"
    ok = load_domain_reviews(
        write(tmp_path / "ok.csv", head + "www.Example.org,accept,CC-BY-4.0,jd,2025-01-02,footer covers all text\n")
    )
    assert ok[0].domain == "example.org"
    for body, msg in [
        ("x.org,maybe,,jd,2025-01-02,\n", "verdict"),
        ("x.org,accept,,jd,2025-01-02,\n", "known license_spdx"),
        ("x.org,reject,,jd,02/01/2025,\n", "date"),
        ("x.org,note,,,2025-01-02,\n", "reviewer"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            load_domain_reviews(write(tmp_path / "bad.csv", head + body))


def test_site_signals(tmp_path: Path) -> None:
    robots = tmp_path / "robots"
    robots.mkdir()
    write(
        robots / "a.example.txt",
        "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nAllow: /\nContent-Signal: search=yes, ai-train=no\n",
    )
    write(robots / "b.example.txt", "User-agent: *\nDisallow: /private/\nDisallowAITraining: /blog/\n")
    tdm = tmp_path / "tdm"
    tdm.mkdir()
    write(
        tdm / "c.example.json",
        json.dumps([{"location": "/free/*", "tdm-reservation": 0}, {"location": "/", "tdm-reservation": 1}]),
    )
    s = SiteSignals(robots, tdm)
    kinds = lambda url: sorted((o.kind, o.agent) for o in s.for_url(url))  # noqa: E731
    assert kinds("https://a.example/x") == [("content-signal", None), ("robots-txt", "GPTBot")]
    assert kinds("https://b.example/blog/post") == [("disallow-ai-training", None)]
    assert kinds("https://b.example/private/x") == [("robots-txt", None)]
    assert kinds("https://b.example/open") == []
    assert kinds("https://c.example/free/a") == []
    assert kinds("https://c.example/paid/a") == [("tdmrep-json", None)]
    assert not s.checked("https://unknown.example/") and s.checked("https://b.example/")


@pytest.mark.slow
def test_policy_reviews_and_site_optouts_in_a_run(tmp_path: Path) -> None:
    from conftest import run_sample

    review = write(
        tmp_path / "review.csv",
        "domain,verdict,license_spdx,reviewer,date,note\nkyleclo.com,accept,CC-BY-4.0,jd,2025-01-02,owner confirmed by email\nsoldaini.net,reject,,jd,2025-01-02,licence covers code only\n",
    )
    robots = tmp_path / "robots"
    robots.mkdir()
    write(robots / "semanticscholar.org.txt", "User-agent: CCBot\nDisallow: /\n")
    recipe = write(
        tmp_path / "r.toml",
        f'[license]\npolicy = "open"\ndomain_review = "{review.name}"\n[optout]\nrobots_dir = "robots"\nsnapshot_date = "2025-01-15"\nhonour_site = true\n'
        "[score]\nthreshold = 1.0\nkeep_unscored_post_cutoff = true\n",
    )
    assert load_recipe(recipe).optout.robots_dir == str(robots)
    r = run_sample(tmp_path / "out", [str(SAMPLE_DIR / "fixtures" / "warc-dolma")], recipe)
    from curate.store import open_store

    con = open_store(r.store)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    assert q("SELECT DISTINCT license_spdx, license_scope, status FROM documents WHERE domain = 'kyleclo.com'") == [
        ("CC-BY-4.0", "page", "kept")
    ]
    assert q(
        "SELECT DISTINCT license_scope, status, reason FROM documents WHERE domain = 'soldaini.net' AND license_spdx IS NOT NULL"
    ) == [("unknown", "dropped", "license_policy")]
    assert q("SELECT count(*) FROM license_evidence WHERE kind = 'domain-review'")[0][0] >= 3
    site = q(
        "SELECT DISTINCT d.optout_site, d.reason, o.kind, o.agent, o.source, o.observed_at::DATE::VARCHAR FROM documents d JOIN optout_evidence o USING (doc_id) WHERE d.domain = 'semanticscholar.org'"
    )
    assert site == [(True, "opted_out", "robots-txt", "CCBot", "site-snapshot", "2025-01-15")]
    assert (
        q("SELECT count(*) FROM documents WHERE status = 'kept' AND (license_scope IS DISTINCT FROM 'page')")[0][0] == 0
    )
    exported = (r.store.parent / "provenance" / "kept_documents.csv").read_text()
    assert "kyleclo.com" in exported and "CC-BY-4.0" in exported
    tagged = q("SELECT DISTINCT tagged_license_spdx FROM documents WHERE domain = 'kyleclo.com'")
    con.close()
    # the reviewer withdraws the verdict: the next decision restores the tagger's, without a WARC
    from curate.run.commands import decide

    write(review, "domain,verdict,license_spdx,reviewer,date,note\n")
    decide(r.store.parent, load_recipe(recipe))
    con = open_store(r.store)
    assert con.execute("SELECT count(*) FROM license_evidence WHERE kind = 'domain-review'").fetchone()[0] == 0
    assert con.execute("SELECT DISTINCT license_spdx FROM documents WHERE domain = 'kyleclo.com'").fetchall() == tagged
    con.close()


def test_recipe_checks_site_snapshot_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="snapshot_date"):
        load_recipe(write(tmp_path / "r.toml", '[optout]\nrobots_dir = "."\n'))
    with pytest.raises(ConfigError, match="not a folder"):
        load_recipe(write(tmp_path / "r2.toml", '[optout]\nrobots_dir = "nope"\nsnapshot_date = "2025-01-01"\n'))
