"""Fuzz the spec reader: any input is a valid network or one clean SpecError, never a traceback."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.spec import NetworkSpec, SpecError, parse

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


def parse_cleanly(text: str) -> None:
    try:
        result = parse(text, source="fuzz.toml")
    except SpecError as error:
        assert str(error).startswith("fuzz.toml: ")
        return
    assert isinstance(result, NetworkSpec)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_specs())
def test_near_valid_specs(text):
    parse_cleanly(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    parse_cleanly(text)
