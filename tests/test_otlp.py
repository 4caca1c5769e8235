"""Which traces endpoint the standard OTEL_* variables name (app.otlp), as load_settings reads them."""

from __future__ import annotations

import pytest

from app.config import load_settings
from app.errors import ConfigurationError
from app.otlp import traces_endpoint


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "http://127.0.0.1:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example/base/"},
            "https://otel.example/base/v1/traces",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom",
            },
            "http://collector:4318/custom",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "http://127.0.0.1:4318/v1/traces",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, None),  # nothing asks for traces
    ],
)
def test_the_endpoint_follows_the_standard_variables(environ, endpoint):
    assert traces_endpoint(environ) == endpoint


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://127.0.0.1"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER must be otlp or none",
        ),
    ],
)
def test_an_endpoint_the_server_cannot_use_is_refused_by_name(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        traces_endpoint(environ)


def test_no_value_is_echoed():
    with pytest.raises(ConfigurationError) as refused:
        traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "user:hunter2@collector"})
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector", "OTEL_TRACES_EXPORTER": "zipkin"})
    assert "zipkin" not in str(refused.value)


def test_load_settings_reads_the_endpoint_and_no_giftcards_variable_sets_it(tmp_path):
    settings = load_settings(
        {"GIFTCARDS_STATE_DIR": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )
    assert settings.otlp_traces_endpoint == "http://127.0.0.1:4318/v1/traces"
    assert load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)}).otlp_traces_endpoint is None
    with pytest.raises(ConfigurationError, match="unknown setting GIFTCARDS_OTLP_TRACES_ENDPOINT"):
        load_settings(
            {"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318"}
        )
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_ENDPOINT must be"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "collector"})
