"""Hostile input: loaders raise only PolicyError, never anything else; limits are enforced cleanly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limitr_py.compile import compile_document, load_policy
from limitr_py.documents import FORMATS, load_document
from limitr_py.documents.source import MAX_BYTES, MAX_DEPTH
from limitr_py.errors import PolicyError, PolicySyntaxError
from tests.conftest import SAMPLES, SCENARIOS

SAMPLE_TEXTS = [(p.suffix[1:], p.read_bytes()) for s in SCENARIOS for p in sorted((SAMPLES / s).iterdir())]


def _load_and_compile(data: bytes | str, fmt: str | None) -> None:
    try:
        compile_document(load_document(data, format=fmt))
    except PolicyError as exc:
        assert exc.diagnostics, "a PolicyError always carries at least one diagnostic"
        for d in exc.diagnostics:
            assert d.line >= 1 and d.col >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([None, *FORMATS]))
def test_random_bytes_raise_only_policy_errors(data: bytes, fmt: str | None) -> None:
    _load_and_compile(data, fmt)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("{}[]():;,'\"`#@<>.=+-*/_ \n\tabcfnrx0129eE")), max_size=120),
    st.sampled_from([None, *FORMATS]),
)
def test_random_structured_text_raises_only_policy_errors(text: str, fmt: str | None) -> None:
    _load_and_compile(text, fmt)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_TEXTS), st.floats(min_value=0, max_value=1))
def test_truncated_samples_raise_only_policy_errors(sample: tuple[str, bytes], fraction: float) -> None:
    fmt, data = sample
    _load_and_compile(data[: int(len(data) * fraction)], fmt)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_TEXTS), st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_corrupted_samples_raise_only_policy_errors(sample: tuple[str, bytes], at: int, junk: bytes) -> None:
    fmt, data = sample
    i = at % len(data)
    _load_and_compile(data[:i] + junk + data[i + len(junk) :], fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nesting_past_the_limit_is_refused_cleanly(fmt: str) -> None:
    depth = MAX_DEPTH + 10
    text = {
        "json": '{"policy": ' + "[" * depth + "]" * depth + "}",
        "yaml": "policy: " + "[" * depth + "]" * depth,
        "toml": "policy = " + "[" * depth + "]" * depth,
        "stof": "policy: " + "[" * depth + "]" * depth,
    }[fmt]
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format=fmt)
    assert info.value.diagnostics[0].code == "L110"


def test_yaml_block_nesting_past_the_limit_is_refused() -> None:
    depth = MAX_DEPTH + 5
    text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "v: 1\n"
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="yaml")
    assert info.value.diagnostics[0].code == "L110"


def test_nesting_just_inside_the_limit_is_read() -> None:
    depth = MAX_DEPTH - 2
    doc = load_document('{"a": ' + "[" * depth + "]" * depth + "}", format="json")
    value = doc.tree["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_huge_documents_are_refused_before_parsing() -> None:
    text = '{"policy": {"credits": {}, "pad": "' + "x" * MAX_BYTES + '"}}'
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="json")
    assert info.value.diagnostics[0].code == "L110"
    assert "larger than" in info.value.diagnostics[0].message


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(PolicySyntaxError) as info:
        load_document("\n".join(lines), format="yaml")
    assert info.value.diagnostics[0].code == "L110"
    assert "alias" in info.value.diagnostics[0].message


@pytest.mark.parametrize(
    "tag", ["!!python/object/apply:os.system ['echo hi']", "!!binary aGk=", "!!set {a, b}", "!custom 1"]
)
def test_yaml_non_data_tags_are_refused(tag: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document(f"policy:\n  credits: {tag}\n", format="yaml")
    assert info.value.diagnostics[0].code == "L109"


def test_in_memory_mapping_refuses_nan() -> None:
    with pytest.raises(PolicySyntaxError):
        load_policy({"policy": {"credits": {"c": {"overhead_cost": float("nan")}}}})


def test_in_memory_floats_go_through_str() -> None:
    policy = load_policy({"policy": {"credits": {"c": {"price": {"amount": 0.1}}}}})
    assert str(policy.credits["c"].pricing.price) == "0.1"


@pytest.mark.parametrize("literal", ["0x_", "0o_", "1e_", "0b"])
def test_malformed_stof_numbers_are_syntax_errors(literal: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document(f"a: {literal}", format="stof")
    assert info.value.diagnostics[0].code in ("L101", "L106")
