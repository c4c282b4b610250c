"""The frozen executable's entry point: what the `docker-credential-switchboard` console script runs."""

from helper.cli import run

if __name__ == "__main__":
    run()
