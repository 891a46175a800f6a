"""`python -m digest`: the same as the `digest` command."""

from digest.program import main

main()
