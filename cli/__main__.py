"""`python -m cli`: the same as the `migrator` command."""

from cli.main import main

main()
