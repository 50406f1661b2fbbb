"""`python -m app.cli`: the same command line as `umbrella`."""

from app.cli import main

main()
