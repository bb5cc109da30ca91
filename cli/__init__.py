"""Command-line apps. Thin: parse, build a config, call the library."""
