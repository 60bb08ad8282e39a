"""Deduplication: MinHash signatures and LSH parameters, the ingest step that signs texts, candidate buckets
per band, and verification and clustering over the whole store."""
