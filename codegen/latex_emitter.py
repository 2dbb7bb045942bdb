"""Placeholder until the LaTeX emitter lands: renders no files."""

from __future__ import annotations


def render(network, records) -> dict[str, str]:
    return {}
