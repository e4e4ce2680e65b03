"""genre-daemon: keep a music collection sorted by genre, from the sound itself."""

__version__ = "0.1.0"
