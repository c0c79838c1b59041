"""Configuration, read from the environment once when the function starts."""

import dataclasses
import os

DEFAULT_UPSTREAM_BASE_URL = "https://nexusflow.vip/v1"
DEFAULT_UPSTREAM_TIMEOUT = 120.0


class ConfigError(ValueError):
    """A setting has a value the function cannot start with."""


@dataclasses.dataclass(frozen=True)
class Settings:
    upstream_base_url: str = DEFAULT_UPSTREAM_BASE_URL
    # Seconds for connecting and for each read: a stream may last minutes, but never a silent minute.
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT

    @property
    def chat_completions_url(self):
        return self.upstream_base_url + "/chat/completions"

    @classmethod
    def from_env(cls, environ=None):
        env = os.environ if environ is None else environ
        base_url = env.get("UPSTREAM_BASE_URL", "").strip() or DEFAULT_UPSTREAM_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"UPSTREAM_BASE_URL must be an http(s) URL, got {base_url!r}")
        return cls(
            upstream_base_url=base_url.rstrip("/"),
            upstream_timeout=_positive_float(env, "UPSTREAM_TIMEOUT", DEFAULT_UPSTREAM_TIMEOUT),
        )


def _positive_float(env, name, default):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value
