"""The operators' command line: `migrator <subcommand>`."""
