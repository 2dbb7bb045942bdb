"""The LaTeX reading and emitter: the derivation document and its snippets."""
