"""Prometheus metrics of the service (prometheus-client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter("genre_http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "genre_http_request_duration_seconds", "HTTP request latency", ["method", "route"], buckets=LATENCY_BUCKETS
)
IN_FLIGHT = Gauge("genre_http_requests_in_flight", "HTTP requests being served")
INFERENCE_SECONDS = Histogram(
    "genre_inference_duration_seconds", "ONNX Runtime time per batch", buckets=LATENCY_BUCKETS
)
BATCH_WINDOWS = Histogram(
    "genre_inference_batch_windows", "Analysis windows per ONNX call", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
AUDIO_SECONDS = Counter("genre_audio_seconds_total", "Seconds of audio classified")
PAYLOAD_BYTES = Histogram(
    "genre_upload_bytes", "Size of uploaded audio files", buckets=tuple(2**k for k in range(10, 31, 2))
)
PREDICTIONS = Counter(
    "genre_predictions_total", "Music uploads classified, by top label (the model card's labels)", ["label"]
)
MUSIC = Counter(
    "genre_uploads_by_music_total",
    "Uploads classified, by the music detector's verdict",
    ["music"],  # true, false; unknown for a model without a detector
)
MODEL_INFO = Gauge("genre_model_info", "The loaded model (value 1)", ["name", "version", "provider"])
SHED = Counter(
    "genre_requests_shed_total",
    "Requests refused or dropped by admission control, by reason",
    ["reason"],  # queue_full, queue_timeout, upload_timeout, client_gone
)
QUEUED = Gauge("genre_admission_queue_depth", "Requests waiting for a place")
IN_SERVICE = Gauge("genre_admission_in_flight", "Requests admitted (reading, decoding or inferring)")
QUEUE_SECONDS = Histogram("genre_admission_wait_seconds", "Time spent waiting for a place", buckets=LATENCY_BUCKETS)
BYTES_HELD = Gauge("genre_upload_bytes_held", "Upload bytes received by admitted requests and not yet released")
