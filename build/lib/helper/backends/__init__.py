"""Backends: one module each behind the small `Backend` interface of `base`."""
