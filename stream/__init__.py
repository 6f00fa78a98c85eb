"""Valence's streaming side: bytes -> event -> batch -> model -> scored event -> bytes."""
