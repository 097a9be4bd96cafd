"""`python -m limitr_py` runs the CLI."""

from limitr_py.cli import main

main()
