"""curate trace: from a token of a mix shard back to its document, its evidence and its WARC record's bytes."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError, InputError, StoreError
from curate.mix import SIDECAR, SIDECAR_SUFFIX
from curate.resources import SAMPLE_DIR
from curate.trace import read_record, trace

from conftest import run_sample

runner = CliRunner()


def sidecar_rows(mix: Path) -> dict[str, list[dict]]:
    """Every sidecar entry of the mix in ``mix``, by shard file, in token order (per-shard sidecars, else the
    mix-level one)."""
    import pyarrow.parquet as pq

    files = sorted(mix.glob("*" + SIDECAR_SUFFIX)) or [mix / SIDECAR]
    out: dict[str, list[dict]] = {}
    for f in files:
        for row in pq.read_table(f).to_pylist():
            shard = f.name.removesuffix(SIDECAR_SUFFIX) if f.name != SIDECAR else row["shard"]
            out.setdefault(shard, []).append(row)
    return {k: sorted(v, key=lambda r: r["token_start"]) for k, v in sorted(out.items())}


def record_by_walk(warc: Path, record_id: str) -> bytes:
    """The bytes of the record ``record_id`` in ``warc``, found by reading the whole file with warcio (not by
    the offsets the store recorded)."""
    from warcio.archiveiterator import ArchiveIterator

    with warc.open("rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            if rec.rec_headers.get_header("WARC-Record-ID") == record_id:
                rec.content_stream().read()
                start, length = it.get_record_offset(), it.get_record_length()
                break
        else:
            raise AssertionError(f"{record_id} is not in {warc}")
    return warc.read_bytes()[start : start + length]


def datatrove_shard(mix: Path) -> tuple[str, list[dict]]:
    """The datatrove shard of the mix with the most entries, and its entries."""
    return max(((s, e) for s, e in sidecar_rows(mix).items() if s.endswith(".ds")), key=lambda kv: len(kv[1]))


@pytest.fixture(scope="module")
def mix(sample_run) -> Path:
    return sample_run.mix


@pytest.fixture(scope="module")
def store(sample_run) -> Path:
    return sample_run.store.parent


def test_every_document_boundary_maps_to_its_entry(mix) -> None:
    rows = sidecar_rows(mix)
    assert rows, "the sample mix has no sidecar entries"
    ends = set()
    for shard, entries in rows.items():
        n = entries[-1]["token_end"]
        assert entries[0]["token_start"] == 0
        first, last = trace(mix / shard, 0, read_warc=False), trace(mix / shard, n - 1, read_warc=False)
        assert first.doc_id == entries[0]["doc_id"] and first.shard_tokens == n
        assert last.doc_id == entries[-1]["doc_id"] and trace(mix / shard, -1, read_warc=False).token_index == n - 1
        for e in entries:
            head = trace(mix / shard, e["token_start"], read_warc=False)
            tail = trace(mix / shard, e["token_end"] - 1, read_warc=False)
            assert head.doc_id == tail.doc_id == e["doc_id"]
            assert (tail.entry["token_start"], tail.entry["token_end"], tail.entry["copy"]) == (
                e["token_start"],
                e["token_end"],
                e["copy"],
            )
            assert tail.token is not None and tail.text is not None and tail.text.endswith(tail.token_text)
            ends.add((tail.token, tail.token_text))
    assert len(ends) == 1, f"documents do not all end with one end-of-text token: {ends}"


def test_trace_with_store_has_the_evidence_and_the_exact_bytes(mix, store, sample_con) -> None:
    rows = [e for entries in sidecar_rows(mix).values() for e in entries]
    with_evidence = {
        d
        for (d,) in sample_con.execute(
            "SELECT DISTINCT doc_id FROM license_evidence JOIN documents USING (doc_id) WHERE status = 'kept'"
        ).fetchall()
    }
    e = next(r for r in rows if r["doc_id"] in with_evidence)
    shard = next(s for s, entries in sidecar_rows(mix).items() if e in entries)
    middle = (e["token_start"] + e["token_end"]) // 2
    t = trace(mix / shard, middle, store)
    assert t.doc_id == e["doc_id"] and t.document is not None and t.document["status"] == "kept"
    assert t.document["warc_record_id"] == e["warc_record_id"] and t.document["tier"] == e["tier"]

    def count(table: str) -> int:
        return sample_con.execute(f"SELECT count(*) FROM {table} WHERE doc_id = ?", [t.doc_id]).fetchone()[0]

    assert len(t.table("licence evidence").rows) == count("license_evidence") > 0
    assert len(t.table("opt-out evidence").rows) == count("optout_evidence")
    cluster = [r[0] for r in t.table("duplicate cluster").rows]
    assert (t.doc_id in cluster) == (t.document["dup_cluster_id"] is not None)
    assert any("records this mix folder as mix" in n for n in t.notes), t.notes
    (text,) = sample_con.execute("SELECT text FROM texts WHERE doc_id = ?", [t.doc_id]).fetchone()
    eos = trace(mix / shard, e["token_end"] - 1, read_warc=False).token_text
    assert t.text.endswith(text + eos), "the token range does not decode to the document's text"
    r = t.record
    assert r is not None and r.verified and r.payload_digest_ok is not False, r
    assert r.data == record_by_walk(Path(e["warc_file"]), e["warc_record_id"])
    assert r.headers["WARC-Target-URI"] == e["url"]

    result = runner.invoke(app, ["trace", str(mix / shard), str(middle), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["entry"]["doc_id"] == t.doc_id and out["record"]["sha256"] == r.sha256 and out["record"]["verified"]
    assert len(out["evidence"]["licence evidence"]) == count("license_evidence")


def test_bad_token_index_and_shard(mix, tmp_path: Path) -> None:
    rows = sidecar_rows(mix)
    shard, entries = next(iter(rows.items()))
    n = entries[-1]["token_end"]
    for bad in (n, -(n + 1), 10**12):
        with pytest.raises(ConfigError, match="out of range"):
            trace(mix / shard, bad)
    result = runner.invoke(app, ["trace", str(mix / shard), str(n)])
    assert result.exit_code == 2 and "out of range" in result.output and f"{n} tokens" in result.output
    last = runner.invoke(app, ["trace", str(mix / shard), "--no-warc", "--", "-1"])
    assert last.exit_code == 0 and f"token {n - 1} of" in last.output and "not re-read" in last.output, last.output
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(mix / shard, alone / shard)
    with pytest.raises(InputError, match="no sidecar"):
        trace(alone / shard, 0)
    with pytest.raises(InputError, match=r"no sidecar|no entries"):
        trace(mix / "nonexistent_00000.ds", 0)


@pytest.mark.slow
def test_a_store_without_the_document(mix, moved_run) -> None:
    rows = sidecar_rows(mix)
    other_store = moved_run["out"]  # a store of one WARC: it holds none of the other files' documents
    e = next(e for entries in rows.values() for e in entries if Path(e["warc_file"]).name != moved_run["warc"].name)
    shard = next(s for s, es in rows.items() if e in es)
    with pytest.raises(StoreError, match="not in the store"):
        trace(mix / shard, e["token_start"], other_store)


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run on a copy of one sample WARC, whose copy is then moved away (as WARCs are after ingest)."""
    root = tmp_path_factory.mktemp("moved")
    (root / "crawl").mkdir()
    warc = shutil.copy(SAMPLE_DIR / "generated" / "sample-crawl.warc.gz", root / "crawl" / "sample-crawl.warc.gz")
    run_sample(root / "out", [str(warc)])
    (root / "elsewhere").mkdir()
    moved = Path(shutil.move(warc, root / "elsewhere" / "sample-crawl.warc.gz"))
    return {"out": root / "out", "mix": root / "out" / "mix", "warc": moved, "elsewhere": root / "elsewhere"}


@pytest.mark.slow
def test_an_unreachable_warc_is_said_and_the_rest_printed(moved_run, tmp_path: Path) -> None:
    mix, out = moved_run["mix"], moved_run["out"]
    shard, entries = next(iter(sidecar_rows(mix).items()))
    e = entries[len(entries) // 2]
    args = ["trace", str(mix / shard), str(e["token_start"]), "--store", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for expected in ("unreachable", "does not exist", e["doc_id"], e["url"], e["warc_record_id"], "licence"):
        assert expected in result.output, expected
    t = trace(mix / shard, e["token_start"], out)
    assert t.record is not None and t.record.data is None and not t.record.verified and t.document is not None

    saved = tmp_path / "record.warc.gz"
    found = runner.invoke(app, [*args, "--warc-dir", str(moved_run["elsewhere"]), "--save-record", str(saved)])
    assert found.exit_code == 0 and "payload digest verified" in found.output, found.output
    assert saved.read_bytes() == record_by_walk(moved_run["warc"], e["warc_record_id"])
    nothing = runner.invoke(app, [*args, "--save-record", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "not written" in nothing.output and not (tmp_path / "none").exists()


@pytest.mark.slow
def test_changed_bytes_fail_the_checks(moved_run, tmp_path: Path) -> None:
    mix = moved_run["mix"]
    entries = next(iter(sidecar_rows(mix).values()))
    e = entries[0]
    member = record_by_walk(moved_run["warc"], e["warc_record_id"])
    raw = gzip.decompress(member)
    body = raw.rindex(b"</")  # a byte of the HTTP payload, near its end
    tampered = gzip.compress(raw[:body] + (b"X" if raw[body : body + 1] != b"X" else b"Y") + raw[body + 1 :])
    f = tmp_path / "tampered.warc.gz"
    f.write_bytes(b"\0" * 10 + tampered)
    bad = read_record(str(f), 10, len(tampered), e["warc_record_id"])
    assert bad.data is not None and bad.record_id_ok and bad.payload_digest_ok is False and not bad.verified
    good = read_record(str(moved_run["warc"]), e["record_offset"], e["record_length"], e["warc_record_id"])
    assert good.verified
    other = read_record(str(moved_run["warc"]), e["record_offset"], e["record_length"], "<urn:uuid:another>")
    assert other.record_id_ok is False and not other.verified and "WARC-Record-ID" in other.problems[0]
    short = read_record(str(f), 10, len(tampered) + 100, e["warc_record_id"])
    assert short.data is None and "short" in (short.unreachable or "")
    assert member[:2] == b"\x1f\x8b"  # a gzip member, as the store's offsets address


def test_shard_names_resolve_to_their_sidecar(mix, tmp_path: Path) -> None:
    """A datatrove shard by any of its files' names, with its own sidecar beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard, entries = datatrove_shard(mix)
    own = tmp_path / "own"
    own.mkdir()
    for f in mix.glob(shard + "*"):
        shutil.copy(f, own / f.name)
    shutil.copy(mix / "manifest.json", own / "manifest.json")
    if not (own / (shard + SIDECAR_SUFFIX)).exists():
        pq.write_table(pa.Table.from_pylist(entries), own / (shard + SIDECAR_SUFFIX))
    probe = entries[len(entries) // 2]["token_start"] + 1
    want = trace(mix / shard, probe, read_warc=False)
    for name in (shard, shard + ".index", shard + ".metadata", shard + SIDECAR_SUFFIX):
        got = trace(own / name, probe, read_warc=False)
        assert got.sidecar == own / (shard + SIDECAR_SUFFIX) and got.shard == own / shard
        assert (got.doc_id, got.token, got.text) == (want.doc_id, want.token, want.text)


@pytest.mark.slow
def test_a_megatron_shard_by_any_of_its_names(mix, tmp_path: Path) -> None:
    """A .bin/.idx pair written by Megatron-LM's own builder, traced by prefix, .bin and .idx."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    shard, entries = datatrove_shard(mix)
    probe = entries[len(entries) // 2]["token_start"] + 1
    want = trace(mix / shard, probe, read_warc=False)
    size = int((mix / (shard + ".metadata")).read_text().splitlines()[0].rsplit("|", 1)[1])  # datatrove's token size
    tokens = np.fromfile(mix / shard, dtype=f"<u{size}").astype(np.int32)
    meg = tmp_path / "megatron"
    meg.mkdir()
    builder = indexed.IndexedDatasetBuilder(str(meg / "mix_00000.bin"), dtype=np.int32)
    for e in entries:
        builder.add_document(tokens[e["token_start"] : e["token_end"]], [e["token_end"] - e["token_start"]])
    builder.finalize(str(meg / "mix_00000.idx"))
    pq.write_table(
        pa.Table.from_pylist([{**e, "shard": "mix_00000.bin"} for e in entries]),
        meg / ("mix_00000.bin" + SIDECAR_SUFFIX),
    )
    shutil.copy(mix / "manifest.json", meg / "manifest.json")
    for name in ("mix_00000", "mix_00000.bin", "mix_00000.idx"):
        got = trace(meg / name, probe, read_warc=False)
        assert got.shard == meg / "mix_00000.bin" and got.shard_tokens == len(tokens)
        assert (got.doc_id, got.token, got.text) == (want.doc_id, want.token, want.text)
    # no sidecar of its own: the mix-level sidecar, which names the shard by its datatrove file
    (meg / ("mix_00000.bin" + SIDECAR_SUFFIX)).unlink()
    pq.write_table(pa.Table.from_pylist([{**e, "shard": "mix_00000.ds"} for e in entries]), meg / SIDECAR)
    got = trace(meg / "mix_00000.idx", probe, read_warc=False)
    assert got.sidecar == meg / SIDECAR and (got.doc_id, got.token) == (want.doc_id, want.token)


@pytest.mark.slow
def test_what_the_store_changed_since_the_mix_is_noted(moved_run, tmp_path: Path) -> None:
    """A later `curate decide` with an earlier cutoff: the trace says the store's tier and status now."""
    from curate.recipe import load_recipe
    from curate.run.commands import decide

    entries = next(iter(sidecar_rows(moved_run["mix"]).values()))
    e = next(r for r in entries if r["tier"] == "pre_cutoff")
    shard = next(s for s, es in sidecar_rows(moved_run["mix"]).items() if e in es)
    unchanged = trace(moved_run["mix"] / shard, e["token_start"], moved_run["out"], read_warc=False)
    assert not [n for n in unchanged.notes if "in the store now" in n], unchanged.notes
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(moved_run["out"] / "provenance.duckdb", store / "provenance.duckdb")
    recipe = tmp_path / "early.toml"
    recipe.write_text(f"cutoff = {e['warc_date']:%Y-%m-%d}\n")  # the document's own day: no longer before it
    decide(store, load_recipe(recipe))
    t = trace(moved_run["mix"] / shard, e["token_start"], store, read_warc=False)
    assert t.document["tier"] != "pre_cutoff"
    assert f"tier is {t.document['tier']!r} in the store now, 'pre_cutoff' in the sidecar" in t.notes, t.notes


@pytest.mark.slow
def test_a_mix_with_a_tokenizer_json_decodes(store, tmp_path: Path) -> None:
    """A mix cut with a Hugging Face tokenizer.json: the trace decodes with it (from the copy beside the shards)."""
    from curate.recipe import load_recipe
    from curate.run.commands import mix as cut_mix

    tokenizer = Path(
        shutil.copy(Path(__file__).parent / "data" / "tokenizer" / "tokenizer.json", tmp_path / "bpe.json")
    )
    copy = tmp_path / "store"
    copy.mkdir()
    shutil.copy(store / "provenance.duckdb", copy / "provenance.duckdb")  # the session's store stays as it is
    recipe = tmp_path / "hf.toml"
    recipe.write_text(f'[mix]\ntokenizer = "hf:{tokenizer.as_posix()}"\n')
    cut_mix(copy, copy / "mix", load_recipe(recipe))
    shutil.move(copy / "mix", tmp_path / "moved-mix")  # the mix alone, its tokenizer copy inside
    tokenizer.unlink()  # the file the recipe named is gone
    shard, entries = datatrove_shard(tmp_path / "moved-mix")
    e = entries[len(entries) // 2]
    t = trace(tmp_path / "moved-mix" / shard, e["token_end"] - 1, read_warc=False)
    assert t.doc_id == e["doc_id"] and t.tokenizer.startswith("hf:") and t.text and t.token_text, t.notes
    assert not [n for n in t.notes if "not decoded" in n]
