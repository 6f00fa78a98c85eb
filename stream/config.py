"""Every setting Valence has, in one typed place.

Each field is read from the environment as ``VALENCE_<FIELD>`` (upper case) or given by a
command-line flag; nothing else in Valence reads ``os.environ``. `deploy/README.md` lists
them all; `tests/unit/test_config.py` checks that list against this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"


class Settings(BaseSettings):
    """Valence configuration. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="VALENCE_", frozen=True, extra="forbid")

    # --- Kafka -------------------------------------------------------------------------
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How to talk to the brokers."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certs.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")
    app_id: str = Field("valence", description="Faust app id; also the consumer group id.")
    input_topic: str = Field("valence.editor-events", description="Topic of editor events.")
    output_topic: str = Field("valence.scored-events", description="Topic of scored events.")
    dead_letter_topic: str = Field(
        "valence.dead-letter", description="Topic of events that could not be scored."
    )
    topic_partitions: int = Field(
        4, ge=1, description="Partitions given to topics Valence creates (input and output)."
    )
    topic_replication: int = Field(1, ge=1, description="Replication factor of created topics.")
    commit_interval_s: float = Field(
        1.0, gt=0, description="How often acknowledged offsets are committed."
    )

    # --- Batching ------------------------------------------------------------------------
    batch_max_events: int = Field(64, ge=1, description="Most events in one model call.")
    batch_max_tokens: int = Field(
        8192, ge=64, description="Most tokens (all segments, padding excluded) in one model call."
    )
    batch_max_wait_s: float = Field(
        0.05, ge=0, description="Longest a batch waits for more events after its first one."
    )
    batch_flush_when_idle: bool = Field(
        True, description="Flush at once when the model is idle instead of waiting out the timer."
    )
    max_in_flight_events: int = Field(
        512, ge=1, description="Events decoded but not yet scored; beyond it consumption waits."
    )

    # --- Input limits ----------------------------------------------------------------------
    max_event_bytes: int = Field(
        1_000_000, ge=256, description="Larger raw events are dead-lettered as too_large."
    )
    max_text_chars: int = Field(
        200_000, ge=1, description="Longer texts are dead-lettered as text_too_long."
    )

    # --- Model -----------------------------------------------------------------------------
    model_path: Path = Field(
        SHIPPED_MODEL_DIR, description="Directory of a Valence model (config + safetensors)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto picks CUDA when a GPU is visible, else CPU."
    )
    precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        "auto", description="auto: fp16 on CUDA, fp32 on CPU. int8 is CPU dynamic quantisation."
    )
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads for inference (default: torch's choice)."
    )
    max_segment_tokens: int = Field(
        128,
        ge=16,
        le=512,
        description="Longer sentences are split into chunks of this many tokens.",
    )

    # --- Serving ---------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="Address of /metrics, /health, /ready.")
    http_port: int = Field(9464, ge=0, le=65535, description="Port of /metrics, /health, /ready.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    # --- Local Kafka (valence kafka start) ------------------------------------------------
    state_dir: Path = Field(
        Path(".valence"), description="Where the local broker keeps its data, logs and pid."
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka version the launcher runs.")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Port of the local broker.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _non_empty_servers(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name at least one host:port")
        return value

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options for aiokafka clients, from this configuration."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            )
        return options

    def masked(self) -> dict[str, Any]:
        """The configuration as a dict for logging, secrets masked."""
        return {
            key: ("***" if isinstance(value, SecretStr) else value)
            for key, value in self.model_dump().items()
        }
