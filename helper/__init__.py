"""docker-credential-switchboard: one Docker credential helper that routes each registry host to a backend."""

__version__ = "0.1.0"
NAME = "docker-credential-switchboard"
# set by the standalone build's launcher for one `get` (helper/fastpath.py); read here so that a get
# without a launcher never imports the fast-record code
FAST_RECORD_VAR = "SWITCHBOARD_FAST_RECORD"
