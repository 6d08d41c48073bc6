"""Service settings, read from GENRE_* environment variables (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.auth import parse_keys
from model.pipeline import MAX_DURATION_S, MIN_DURATION_S, WINDOW_HOP_S, Limits
from model.runtime import DEFAULT_MODEL_PATH, ProviderChoice


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENRE_", env_file=".env", extra="ignore")

    model_path: Path = DEFAULT_MODEL_PATH
    providers: ProviderChoice = "auto"  # auto: CUDA when onnxruntime-gpu sees a GPU, else CPU
    intra_op_threads: int = Field(0, ge=0)  # 0: onnxruntime's default (all cores)
    inter_op_threads: int = Field(0, ge=0)
    # ONNX Runtime's CPU arena keeps memory for every batch shape it has seen; off, with batches of
    # at most 8 windows, the soak benchmark's memory is flat at 402 MiB (522 MiB and growing with it).
    ort_memory_arena: bool = False

    max_upload_bytes: int = Field(100 * 1024 * 1024, gt=0)
    # The audio accepted and its windows' hop (model.pipeline's defaults, the `genre` job's too);
    # checked against the loaded model's front end at start-up.
    max_duration_s: float = Field(MAX_DURATION_S, gt=0)
    min_duration_s: float = Field(MIN_DURATION_S, gt=0)
    window_hop_s: float = Field(WINDOW_HOP_S, gt=0)
    # Where a window's or upload's music probability makes it music; unset: the model card's, chosen
    # to call at most 0.5 % of music not music out of fold (MODEL_CARD.md). Lower it to let more
    # borderline audio through as music, raise it to turn more away.
    music_threshold: float | None = Field(None, gt=0, lt=1)
    # A library to search by POST /similar: the Parquet file of `genre classify --embeddings` made with
    # this model; unset: /similar answers 404. A large one's search index is built at start-up and
    # saved beside it (model/library_index.py).
    index_path: Path | None = None

    # Admission control (app/admission.py): what the service holds at once.
    max_in_flight: int = Field(4, ge=1)  # classifications reading, decoding or inferring at once
    max_queue: int = Field(16, ge=0)  # requests waiting for a place; past it, 503 at once
    queue_timeout_s: float = Field(30.0, gt=0)  # longest wait for a place before a 503
    upload_timeout_s: float = Field(60.0, gt=0)  # an admitted upload must arrive within this

    # API keys (app/auth.py): comma-separated keys, or the path of a file of keys; unset: open.
    api_keys: SecretStr | None = None
    metrics_need_key: bool = False  # also protect /metrics (the probes stay open)

    max_batch_windows: int = Field(8, ge=1)  # windows per ONNX call, across requests
    batch_wait_ms: float = Field(2.0, ge=0)  # how long a batch waits for more requests
    frontend_workers: int = Field(2, ge=1)  # threads decoding audio and computing spectrograms

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        self.limits()  # refuse limits no model could serve at start-up; the model's own are checked on load
        if self.index_path is not None and not self.index_path.is_file():
            raise ValueError(f"GENRE_INDEX_PATH: {self.index_path} is not a file")
        if self.api_keys is not None:
            parse_keys(self.api_keys.get_secret_value())  # refuse an empty key list at start-up
        return self

    def limits(self) -> Limits:
        return Limits(self.window_hop_s, self.min_duration_s, self.max_duration_s)

    def keys(self) -> tuple[str, ...]:
        return parse_keys(self.api_keys.get_secret_value()) if self.api_keys is not None else ()


@lru_cache
def get_settings() -> Settings:
    return Settings()
