"""One file per runtime; engine.runtimes.registry lists them."""
