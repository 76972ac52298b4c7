"""Deployment settings read from the CDK context (cdk.json, or `cdk synth -c key=value`).

Everything here is non-secret. Provider API keys never pass through the context: the
operator stores them in the provider-keys secret (`make put-provider-keys`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway import routes  # importable: the infra package put functions/ on sys.path

from infra.alarm_settings import AlarmSetting, AlarmSettingsError, alarm_settings, check_window, checked_email
from infra.bedrock_config import BedrockConfigError, bedrock_deployments

if TYPE_CHECKING:  # no jsii/node start for the commands that only read settings
    from constructs import Node

# Python versions of the Lambda runtime the stack can deploy (README, "Python version of the functions").
SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
DEFAULT_PYTHON_VERSION = "3.12"
# Lambda SnapStart supports the Python runtimes from 3.12 on.
SNAPSTART_PYTHON_VERSIONS = ("3.12", "3.13")
# Lambda's instruction set architectures; the layer's wheels are built for the one chosen.
SUPPORTED_ARCHITECTURES = ("arm64", "x86_64")
DEFAULT_ARCHITECTURE = "arm64"
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
PROVIDER_TYPES = frozenset({"openai", "azure", "anthropic", "bedrock", "gemini", "vertex"})
PROVIDER_FIELDS = frozenset(
    {
        "type",
        "api_base",
        "api_version",
        "models",
        "anthropic_version",
        "default_max_tokens",
        "region",
        "batch_caps",
        # vertex: its project, location and Cloud Storage bucket (gateway.providers.vertex.config)
        "project",
        "location",
        "gcs_bucket",
        "gcs_prefix",
        "gcs_api_base",
    }
)
# Types whose api_base has a default (Anthropic's, Gemini's API, Vertex's from its location) or
# does not apply (Bedrock: its region).
API_BASE_OPTIONAL_TYPES = frozenset({"anthropic", "bedrock", "gemini", "vertex"})
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
# CloudWatch Logs retention periods (days) and their aws_logs.RetentionDays member names.
RETENTION_DAY_NAMES: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

# The first host label of an api_base copied from an example without being filled in.
PLACEHOLDER_HOST_LABELS = frozenset({"resource", "your-resource", "your_resource", "yourresource"})
PLACEHOLDER_PREFIXES = ("your-", "your_", "change-me", "changeme")
PLACEHOLDER_CHARACTERS = frozenset("<>{}…")

DEFAULT_PROVIDERS: dict[str, dict[str, str]] = {
    "openai": {"type": "openai", "api_base": "https://api.openai.com/v1"},
}


def reserved_path_segments() -> frozenset[str]:
    """Static first path segments of the route table: a provider of that name would shadow them."""
    segments = set()
    for route in routes.ROUTES:
        for path in route.paths:
            first = path.strip("/").split("/")[0]
            if not first.startswith("{"):
                segments.add(first)
    return frozenset(segments)


class ConfigError(ValueError):
    """Invalid deployment settings; raised at synth time, before anything is deployed."""


@dataclass(frozen=True)
class GatewayConfig:
    providers: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_PROVIDERS))
    default_provider: str = "openai"
    throttle_rate_limit: float = 50
    throttle_burst_limit: int = 100
    log_level: str = "INFO"
    log_retention_days: int = 30
    # Overrides of the alarms' defaults (infra/alarm_settings.py; README, "Dashboard, alarms and runbook"):
    # {"api_5xx_rate": {"threshold": 2, "evaluation_periods": 5}}.
    alarms: dict[str, Any] = field(default_factory=dict)
    # An address the alarm topic sends every alarm to (SNS asks it to confirm first).
    alarm_email: str | None = None
    # Optional overrides of the functions' own defaults (gateway.runtime.settings); None leaves them unset.
    secrets_ttl_seconds: int | None = None
    upstream_timeout_seconds: float | None = None
    # The Lambda runtime's Python version; the build compiles the byte code with it (infra/bundling.py).
    python_version: str = DEFAULT_PYTHON_VERSION
    # The functions' architecture (arm64 by default; LocalStack runs them on the host's, see README).
    architecture: str = DEFAULT_ARCHITECTURE
    # Lambda SnapStart on the API functions (billed: see README, "Cold starts and SnapStart").
    snapstart: bool = False
    # Per-million-token USD prices added to or overriding the shipped table (README, "Money"):
    # {"my-model": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}.
    model_prices: dict[str, Any] = field(default_factory=dict)
    # What a budget's hold counts for a request that sets no max_tokens (None: the functions' 4096).
    default_output_tokens_per_request: int | None = None
    # How often EventBridge Scheduler runs the batch watcher (minutes; README, "Events and webhooks").
    watch_interval_minutes: int = 1
    # Test-only (make localstack-test): providers and webhooks may be plain http:// on this
    # machine's loopback (the provider simulator, a local receiver). Never for a real deployment.
    loopback_test_endpoints: bool = False
    # Test-only, with loopback_test_endpoints: one more address allowed like loopback, this
    # machine's on Docker's bridge, where LocalStack's Lambda containers reach the simulator.
    test_endpoint_host: str | None = None

    def __post_init__(self) -> None:
        if self.test_endpoint_host is not None:
            _check_test_endpoint_host(self.test_endpoint_host, self.loopback_test_endpoints)
        validate_providers(
            self.providers,
            self.default_provider,
            allow_loopback_http=self.loopback_test_endpoints,
            test_host=self.test_endpoint_host,
        )
        try:
            bedrock_deployments(self.providers)
        except BedrockConfigError as error:
            raise ConfigError(str(error)) from error
        if self.throttle_rate_limit <= 0 or self.throttle_burst_limit <= 0:
            raise ConfigError("throttle_rate_limit and throttle_burst_limit must be positive")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {sorted(LOG_LEVELS)}, got {self.log_level!r}")
        if self.log_retention_days not in RETENTION_DAY_NAMES:
            raise ConfigError(f"log_retention_days {self.log_retention_days} is not a CloudWatch value")
        try:
            for name, setting in self.alarm_settings.items():  # (validates the overrides)
                check_window(name, setting, setting.period_minutes or self.watch_interval_minutes)
            checked_email(self.alarm_email)
        except AlarmSettingsError as error:
            raise ConfigError(str(error)) from error
        if self.secrets_ttl_seconds is not None and self.secrets_ttl_seconds < 0:
            raise ConfigError("secrets_ttl_seconds must be >= 0")
        if self.upstream_timeout_seconds is not None and self.upstream_timeout_seconds <= 0:
            raise ConfigError("upstream_timeout_seconds must be > 0")
        if self.python_version not in SUPPORTED_PYTHON_VERSIONS:
            raise ConfigError(
                f"python_version must be one of {list(SUPPORTED_PYTHON_VERSIONS)}, "
                f"got {self.python_version!r}"
            )
        for model, prices in self.model_prices.items():
            if not isinstance(prices, dict) or not {"input", "output"} <= set(prices):
                raise ConfigError(
                    f"model_prices[{model!r}] needs per-million-token 'input' and 'output' prices"
                )
            if any(not isinstance(value, int | float) or value < 0 for value in prices.values()):
                raise ConfigError(
                    f"model_prices[{model!r}]: prices are numbers >= 0 (USD per million tokens)"
                )
        if self.default_output_tokens_per_request is not None and self.default_output_tokens_per_request <= 0:
            raise ConfigError("default_output_tokens_per_request must be > 0")
        if not 1 <= self.watch_interval_minutes <= 1440:
            raise ConfigError("watch_interval_minutes must be between 1 and 1440")
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise ConfigError(
                f"architecture must be one of {list(SUPPORTED_ARCHITECTURES)}, got {self.architecture!r}"
            )
        if self.snapstart and self.python_version not in SNAPSTART_PYTHON_VERSIONS:
            raise ConfigError(f"snapstart needs python_version {' or '.join(SNAPSTART_PYTHON_VERSIONS)}")

    @property
    def alarm_settings(self) -> dict[str, AlarmSetting]:
        return alarm_settings(self.alarms)

    @property
    def providers_json(self) -> str:
        return json.dumps(self.providers, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_context(cls, node: Node) -> GatewayConfig:
        keys = (
            "providers",
            "default_provider",
            "throttle_rate_limit",
            "throttle_burst_limit",
            "log_level",
            "log_retention_days",
            "alarms",
            "alarm_email",
            "secrets_ttl_seconds",
            "upstream_timeout_seconds",
            "python_version",
            "architecture",
            "snapstart",
            "model_prices",
            "default_output_tokens_per_request",
            "watch_interval_minutes",
            "loopback_test_endpoints",
            "test_endpoint_host",
        )
        return cls.from_mapping({key: node.try_get_context(key) for key in keys})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GatewayConfig:
        """Build from raw context values; `-c key=value` on the command line gives strings."""
        kwargs: dict[str, Any] = {}
        converters: dict[str, Any] = {
            "providers": _json_object,
            "default_provider": str,
            "throttle_rate_limit": float,
            "throttle_burst_limit": int,
            "log_level": lambda value: str(value).upper(),
            "log_retention_days": int,
            "alarms": _json_object,
            "alarm_email": str,
            "secrets_ttl_seconds": int,
            "upstream_timeout_seconds": float,
            "python_version": str,
            "architecture": str,
            "snapstart": _boolean,
            "model_prices": _json_object,
            "default_output_tokens_per_request": int,
            "watch_interval_minutes": int,
            "loopback_test_endpoints": _boolean,
            "test_endpoint_host": str,
        }
        for key, convert in converters.items():
            value = values.get(key)
            if value is None:
                continue
            try:
                kwargs[key] = convert(value)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"context value {key!r} is invalid: {error}") from error
        return cls(**kwargs)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ConfigError("providers must be a JSON object of name -> settings")
    return value


def validate_providers(
    providers: Mapping[str, Any],
    default_provider: str,
    *,
    allow_loopback_http: bool = False,
    test_host: str | None = None,
) -> None:
    if not providers:
        raise ConfigError("at least one provider deployment is required")
    reserved = reserved_path_segments()
    for name, spec in providers.items():
        if not isinstance(name, str) or not PROVIDER_NAME.match(name):
            raise ConfigError(f"provider name {name!r} must match {PROVIDER_NAME.pattern}")
        if name in reserved:
            raise ConfigError(f"provider name {name!r} collides with the static path segment /{name}")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"provider {name!r} must be an object")
        unknown = set(spec) - PROVIDER_FIELDS
        if unknown:
            # Also keeps API keys out of the context, the template and the function environment.
            raise ConfigError(
                f"provider {name!r} has unsupported fields {sorted(unknown)}; allowed: "
                f"{sorted(PROVIDER_FIELDS)} (API keys belong in the provider-keys secret)"
            )
        if spec.get("type") not in PROVIDER_TYPES:
            raise ConfigError(f"provider {name!r} type must be one of {sorted(PROVIDER_TYPES)}")
        api_base = spec.get("api_base")
        if api_base is not None or spec.get("type") not in API_BASE_OPTIONAL_TYPES:
            _check_api_base(name, api_base, allow_loopback_http=allow_loopback_http, test_host=test_host)
        for setting in ("api_version", "anthropic_version"):
            if spec.get(setting) is not None and not isinstance(spec[setting], str):
                raise ConfigError(f"provider {name!r} {setting} must be a string")
        max_tokens = spec.get("default_max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise ConfigError(f"provider {name!r} default_max_tokens must be a positive integer")
        models = spec.get("models", {})
        if not isinstance(models, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in models.items()
        ):
            raise ConfigError(f"provider {name!r} models maps deployment names to model names (strings)")
        _check_batch_caps(name, spec.get("batch_caps"))
        if spec.get("type") == "vertex":
            _check_vertex(name, spec)
    if default_provider not in providers:
        raise ConfigError(f"default_provider {default_provider!r} is not one of {sorted(providers)}")


def _check_vertex(name: str, spec: Mapping[str, Any]) -> None:
    """A vertex deployment's project, location and bucket, refused at synth as the functions would."""
    from gateway.providers.config import parse_deployments
    from pydantic import ValidationError

    try:
        parse_deployments({name: dict(spec)})
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        raise ConfigError(f"provider {name!r}: {problems}") from None


def _check_batch_caps(name: str, batch_caps: Any) -> None:
    """A deployment's caps override, refused at synth as the functions would refuse it."""
    if batch_caps is None:
        return
    from gateway.providers.config import BatchCapsOverride
    from pydantic import ValidationError

    try:
        BatchCapsOverride.model_validate(batch_caps)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'batch_caps'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"provider {name!r} batch_caps: {problems}") from None


def _check_test_endpoint_host(host: str, loopback_test_endpoints: bool) -> None:
    if not loopback_test_endpoints:
        raise ConfigError("test_endpoint_host is only for a test deployment (loopback_test_endpoints)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"test_endpoint_host must be an IP address, got {host!r}") from None


def _check_api_base(
    name: str, api_base: Any, *, allow_loopback_http: bool = False, test_host: str | None = None
) -> None:
    if isinstance(api_base, str) and allow_loopback_http and is_loopback_http(api_base):
        return
    if isinstance(api_base, str) and allow_loopback_http and is_test_host_http(api_base, test_host):
        return
    if not isinstance(api_base, str) or not api_base.startswith("https://"):
        raise ConfigError(f"provider {name!r} api_base must be an https:// URL")
    if is_placeholder(api_base):
        raise ConfigError(
            f"provider {name!r} still has the placeholder api_base {api_base!r}: put your "
            f"resource's endpoint in cdk.json's \"providers\" (or -c providers=...), or remove "
            f"the provider {name!r} to deploy without it"
        )


def is_loopback_http(url: str) -> bool:
    """An http:// URL on this machine's loopback (127.0.0.0/8, ::1, localhost)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def is_test_host_http(url: str, test_host: str | None) -> bool:
    """An http:// URL on the one test address (test_endpoint_host), when there is one."""
    parts = urlsplit(url)
    return test_host is not None and parts.scheme == "http" and parts.hostname == test_host


def is_placeholder(api_base: str) -> bool:
    """True for an example endpoint such as https://YOUR-RESOURCE.openai.azure.com."""
    if any(character in api_base for character in PLACEHOLDER_CHARACTERS):
        return True
    first_label = (urlsplit(api_base).hostname or "").split(".")[0].lower()
    return first_label in PLACEHOLDER_HOST_LABELS or first_label.startswith(PLACEHOLDER_PREFIXES)
