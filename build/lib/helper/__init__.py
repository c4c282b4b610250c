"""docker-credential-switchboard: one Docker credential helper that routes each registry host to a backend."""

__version__ = "0.1.0"
NAME = "docker-credential-switchboard"
