"""The user's files and their record: the SQLite journal, the careful mover, writer detection, undo."""
