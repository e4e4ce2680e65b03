"""``genre-daemon import DIR``: sort an existing collection into the library through the same
journal, careful mover and album handling as the daemon, classified by an engine (a local
process pool, or a Ray cluster).

- :mod:`~genre_daemon.importer.plan`: finds and groups the files, and checks the folder;
- :mod:`~genre_daemon.importer.runner`: sorts them, resumably (:class:`Importer`), with the
  filer the daemon holds too (:mod:`genre_daemon.filer`);
- :mod:`~genre_daemon.importer.dry_run`: prints the plan, which is what the run does;
- :mod:`~genre_daemon.importer.progress`: the progress bar and the progress file ``status`` reads.

Import the module you need: the runner loads the model, the progress file does not.
"""
