"""Decoding: the only decoder (a path to mono float32, a span only); each model computes its own log-mel."""
