"""`python -m hvlab`: the same as the `hvlab` command."""

from hvlab.main import main

main()
