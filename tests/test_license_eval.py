"""Eval gate: the licence tagger against hand-labelled pages (licenses/eval/labels.csv)."""

from __future__ import annotations

import csv
import json

from curate.licenses.tagger import tag_html
from curate.read.warc import decode_payload
from curate.resources import LICENSES_DIR, REPO_ROOT

from conftest import html_page

POSITIVE = ("page", "partial")


def score() -> dict[str, float]:
    rows = list(csv.DictReader((LICENSES_DIR / "eval" / "labels.csv").open(encoding="utf-8")))
    tp = fp = fn = exact = media = media_fp = 0
    counts = {"positives": 0, "media": 0, "negatives": 0}
    for r in rows:
        kind, rel = r["file"].split(":", 1)
        body = html_page(rel) if kind == "shared" else (REPO_ROOT / rel).read_bytes()  # shared: in-repo copies
        v = tag_html(decode_payload(body, None)[0] or "")
        predicted = v.spdx_id is not None and v.scope in POSITIVE
        expected = r["expected_scope"] in POSITIVE
        counts["positives" if expected else ("media" if r["expected_scope"] == "media" else "negatives")] += 1
        if predicted and expected:
            tp += 1
            exact += v.spdx_id == r["expected_spdx"]
        elif predicted:
            fp += 1
        elif expected:
            fn += 1
        if r["expected_scope"] == "media":
            media += 1
            media_fp += predicted
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "exact_spdx": exact / tp if tp else 0.0,
        "media_false_positive_rate": media_fp / media if media else 1.0,
        **counts,
    }


def test_license_eval_gate() -> None:
    gate = json.loads((LICENSES_DIR / "eval" / "gate.json").read_text())
    metrics = score()
    for key, n in gate["min_rows"].items():
        assert metrics[key] >= n, f"labels.csv has too few {key}"
    for key, floor in gate["floors"].items():
        assert metrics[key] >= floor, f"{key} {metrics[key]:.3f} < {floor}"
    for key, ceiling in gate["ceilings"].items():
        assert metrics[key] <= ceiling, f"{key} {metrics[key]:.3f} > {ceiling}"
