"""Licence and opt-out evidence: the HTML/header tagger, SPDX mapping, site robots.txt/tdmrep snapshots,
inclusion policies and domain reviews, and the ingest step that records them."""
