"""One module per CLI command, each with register(parser) and main(args) -> exit code."""
