"""The sub-commands of ``genre-daemon``, one module per area: files and models (classify, train,
evaluate), the daemon's run, the config check, the journal (history, undo), collections (import,
tag) and shell completion. :mod:`genre_daemon.cli` builds the one parser from their
``add_parsers`` functions and runs the chosen command.

Heavy modules (torch, matplotlib) are imported inside the commands that need them, so
``--help``, ``completion`` and light commands start fast.
"""
