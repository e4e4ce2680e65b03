"""Filing: the one place that decides where a file or an album goes and takes it there, held by
every way of filing (the daemon, ``import``, the review page)."""
