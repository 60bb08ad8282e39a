"""Model-generated-text scores: text windows, labelled data, metrics, the classifier kinds and their registry,
the transformer encoder, contamination estimates, and the ingest step that scores documents."""
