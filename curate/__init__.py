"""curate: low-background token curation from Common Crawl.

Import what you need from the submodules (``curate.run.commands.run``, ``curate.run.ingest.ingest``,
``curate.read.warc.iter_records``, ``curate.store.open_store`` …); importing ``curate`` itself is cheap and loads no heavy dependency.
"""

__version__ = "0.1.0"
