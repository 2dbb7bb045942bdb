"""Fuzz the spec reader: any input is a valid network or one clean SpecError, never a traceback.

Three sources of input: specs built from near-valid pieces, arbitrary text, and
the built-in specs with random edits (lines deleted, duplicated, swapped,
characters inserted or removed). ``EXAMPLES`` counts what ran and what was
accepted, for the record (``pytest -s`` prints it).
"""

from collections import Counter
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradproof.derive import spec as specs
from gradproof.derive.network import build
from gradproof.derive.spec import NetworkSpec, SpecError, parse

EXAMPLES: Counter = Counter()
BUILT_IN = [
    (resources.files("gradproof.derive") / "networks" / f"{name}.toml").read_text(encoding="utf-8")
    for name in specs.builtin_names()
]

LAYER_TYPES = ["conv2d", "relu", "sigmoid", "maxpool2d", "flatten", "dense", "softmax"]
scalars = st.one_of(
    st.integers(-3, 40), st.booleans(), st.text(max_size=6), st.floats(allow_nan=False, width=32)
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def safe_key(key: str) -> str:
    return key if key.isidentifier() else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def near_valid_specs(draw) -> str:
    lines = [f"name = {toml_value(draw(st.sampled_from(['net', 'a1', '1x', 'x y', ''])))}"]
    lines.append(f"input = {toml_value(draw(st.lists(st.integers(-2, 30), min_size=0, max_size=4)))}")
    lines.append(f"loss = {toml_value(draw(st.sampled_from(['bce', 'mse', 'l1'])))}")
    if draw(st.booleans()):
        lines.append(f"reduction = {toml_value(draw(st.sampled_from(['mean', 'sum', 'max'])))}")
    for _ in range(draw(st.integers(0, 7))):
        lines.append("[[layers]]")
        lines.append(f"type = {toml_value(draw(st.sampled_from(LAYER_TYPES)))}")
        for key in draw(
            st.lists(
                st.sampled_from(["filters", "kernel", "size", "units", "bias", "pad"]),
                max_size=3,
                unique=True,
            )
        ):
            lines.append(f"{key} = {toml_value(draw(scalars))}")
    if draw(st.booleans()):
        lines.append("[notation]")
        for key in draw(st.lists(st.sampled_from(["W1", "Z1", "X", "Q"]), max_size=2, unique=True)):
            lines.append(f"{safe_key(key)} = {toml_value(draw(scalars))}")
    return "\n".join(lines) + "\n"


def parse_cleanly(text: str, kind: str) -> None:
    EXAMPLES[kind] += 1
    try:
        result = parse(text, source="fuzz.toml")
    except SpecError as error:
        assert str(error).startswith("fuzz.toml: ")
        assert "\n" not in str(error).removeprefix("fuzz.toml: malformed TOML")
        return
    EXAMPLES[f"{kind} accepted"] += 1
    assert isinstance(result, NetworkSpec)
    network = build(result)  # a valid spec gives a network, within the proof's limits
    assert network.steps and len(result.layers) <= specs.MAX_LAYERS
    if result.proof == "reduced":  # proven by its miniature, not entry by entry
        return
    assert specs.forward_terms(result) <= specs.MAX_TERMS
    assert specs.chain_products(result)[0] <= specs.MAX_CHAIN


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_specs())
def test_near_valid_specs(text):
    parse_cleanly(text, "near-valid")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    parse_cleanly(text, "arbitrary text")


@st.composite
def edited_built_ins(draw) -> str:
    """A built-in spec with a few random edits of its lines and characters."""
    lines = draw(st.sampled_from(BUILT_IN)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "drop char", "digit"]))
        i = draw(st.integers(0, len(lines) - 1))
        if edit == "delete" and len(lines) > 1:
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "insert":
            position = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:position] + draw(st.text(min_size=1, max_size=3)) + lines[i][position:]
        elif edit == "drop char" and lines[i]:
            position = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:position] + lines[i][position + 1 :]
        elif edit == "digit":
            lines[i] = "".join(draw(st.sampled_from("0123456789-")) if c.isdigit() else c for c in lines[i])
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_built_ins())
def test_edited_built_in_specs(text):
    parse_cleanly(text, "edited built-in")


def test_report_the_number_of_examples():
    """Runs last in this file: the fuzz above ran (``pytest -s`` shows the counts)."""
    print("\nspec fuzz examples:", dict(sorted(EXAMPLES.items())))
    if EXAMPLES:  # absent when this test runs alone
        assert EXAMPLES["near-valid"] and EXAMPLES["arbitrary text"] and EXAMPLES["edited built-in"]
