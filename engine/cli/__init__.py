"""The ``teiji`` command. One module per group of subcommands; ``main`` wires them."""
