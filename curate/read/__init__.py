"""Reading crawls: input resolution (files, globs, URLs, Common Crawl listings) and the WARC/WET/WAT/ARC reader
that turns every record into one document with its coordinates, digests and decoded payload."""
