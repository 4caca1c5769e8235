"""Where traces go, from the standard ``OTEL_*`` variables that :func:`app.config.load_settings` hands
over: the OTLP/HTTP traces URL, or None when nothing asks for traces. The SDK reads the rest of its
variables (headers, timeout, sampler, batch delays) itself when app.tracing starts it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from app.errors import ConfigurationError

PROTOCOL = "http/protobuf"  # the one OTLP transport installed (gRPC would pull in grpcio)


def _value(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as given, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` plus
    ``/v1/traces`` (as every OpenTelemetry SDK reads them); None when neither is set, when
    ``OTEL_SDK_DISABLED`` is true or ``OTEL_TRACES_EXPORTER`` is ``none``. A value the server cannot
    honour is a ConfigurationError naming the variable, never quoting its value (as for every setting)."""
    if _value(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = _value(environ, "OTEL_TRACES_EXPORTER").lower() or "otlp"
    if exporter == "none":
        return None
    name, url = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", _value(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not url:
        name, base = "OTEL_EXPORTER_OTLP_ENDPOINT", _value(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base:
            return None
        url = base.rstrip("/") + "/v1/traces"
    if exporter != "otlp":
        raise ConfigurationError(
            "OTEL_TRACES_EXPORTER must be otlp or none: the one exporter installed is OTLP"
        )
    protocol = _value(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _value(
        environ, "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    if protocol not in ("", PROTOCOL):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL must be {PROTOCOL}, the one transport installed"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be an http:// or https:// URL with a host, such as http://127.0.0.1:4318"
        )
    return url
