"""Decoding and features: the only decoder (a path to mono float32, a span only) and the pure feature functions."""
