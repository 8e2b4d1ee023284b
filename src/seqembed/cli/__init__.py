"""The command line: one module per command family, over the library."""
