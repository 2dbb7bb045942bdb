"""The NumPy reading and emitter: the generated training module."""
