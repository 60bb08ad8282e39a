"""Tokenized shards for mixes: offline tokenizers, the shard formats (datatrove, Megatron-LM, JSONL, Parquet), the
mix plan (token targets, copies, the global shuffle, shard boundaries), and the datatrove steps that tokenize ranges
of documents and merge them into shards."""
