"""Property-based fuzzing of the decoder (hypothesis) and of the HTTP API (schemathesis)."""

from __future__ import annotations

import subprocess

import numpy as np
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from model.audio import AudioError
from model.features import DEFAULT_SETTINGS
from model.pipeline import Limits, Pipeline, PreparedAudio
from tests.audio import FORMATS, encoded

PIPELINE = Pipeline(DEFAULT_SETTINGS, Limits(max_duration_s=60.0))
SEEDS = {name: encoded(name, seconds=1.5) for name in FORMATS}


def decodes_or_refuses(data: bytes) -> None:
    try:
        audio = PIPELINE.prepare(data)
    except AudioError as e:
        assert e.status in (413, 415, 422) and str(e)
    else:
        assert isinstance(audio, PreparedAudio) and 1.0 <= audio.duration_s <= 60.0
        assert audio.inputs.ndim == 3 and np.isfinite(audio.inputs).all()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_get_a_4xx(data: bytes) -> None:
    decodes_or_refuses(data)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 100),
)
def test_mutated_real_files_decode_or_get_a_4xx(name: str, edits: list[tuple[int, int]], cut_percent: int) -> None:
    data = bytearray(SEEDS[name])
    for position, value in edits:  # mostly headers and the first frames: where parsers trip
        data[position % len(data)] = value
    decodes_or_refuses(bytes(data[: max(1, len(data) * cut_percent // 100)]))


def test_api_conforms_to_its_schema(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    """schemathesis drives every operation of the service's own OpenAPI schema, on the real server:
    no 5xx, and every response matches the schema (status, content type, body)."""
    url, process = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/classify", "/health", "/ready", "/metrics"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            # Any bytes are a schema-valid upload but few are audio: a 4xx for them is the contract,
            # so schemathesis' "valid data must be accepted" check does not apply; all others do.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
    assert process.poll() is None
