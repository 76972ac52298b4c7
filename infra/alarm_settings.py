"""The alarms' defaults and their overrides from cdk.json (`"alarms": {"<name>": {...}}`).

Plain data (no CDK import): `GatewayConfig` validates the overrides at synth time, the
monitoring stack reads the merged settings, and the README's runbook names the same alarms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

OVERRIDABLE_FIELDS = frozenset({"threshold", "evaluation_periods", "period_minutes"})
# A loose check: an address CloudFormation and SNS will take, not a full RFC 5322 parser.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class AlarmSetting:
    """When an alarm fires: `threshold` reached (or crossed, see `comparison`) in
    `evaluation_periods` consecutive periods of `period_minutes` (None: the watcher's interval)."""

    threshold: float
    evaluation_periods: int
    period_minutes: int | None
    comparison: str  # ">=", ">" or "<": how the metric compares with the threshold
    meaning: str  # what the threshold counts, for the alarm's description and the README


DEFAULT_ALARMS: dict[str, AlarmSetting] = {
    "api_5xx_rate": AlarmSetting(5, 3, 5, ">", "per cent of API requests answered 5xx"),
    "provider_error_rate": AlarmSetting(
        20, 3, 5, ">", "per cent of a provider's calls answered 429 or 5xx, timed out or unreachable"
    ),
    "watcher_stalled": AlarmSetting(1, 3, None, "<", "watcher passes completed per watch interval"),
    "invariant_violations": AlarmSetting(1, 1, 5, ">=", "records a books check found off"),
    "dead_letters": AlarmSetting(1, 1, 5, ">=", "webhook events waiting in the dead-letter queue"),
    "transfer_failures": AlarmSetting(1, 1, 5, ">=", "file transfers to a provider that gave up"),
    "transfer_failure_lost": AlarmSetting(
        1, 1, 5, ">=", "failed transfer events not handed over or not handled"
    ),
    "dynamodb_throttling": AlarmSetting(0, 1, 5, ">", "throttled read or write events on the table"),
    "function_error_rate": AlarmSetting(5, 3, 5, ">", "per cent of a function's invocations that failed"),
}


class AlarmSettingsError(ValueError):
    """An unusable `alarms` or `alarm_email` value in cdk.json."""


def alarm_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, AlarmSetting]:
    """The defaults with cdk.json's overrides applied; unknown names or fields are refused."""
    settings = dict(DEFAULT_ALARMS)
    for name, fields in (overrides or {}).items():
        if name not in DEFAULT_ALARMS:
            raise AlarmSettingsError(f"alarms: unknown alarm {name!r}; known: {sorted(DEFAULT_ALARMS)}")
        if not isinstance(fields, Mapping):
            raise AlarmSettingsError(f"alarms[{name!r}] must be an object of {sorted(OVERRIDABLE_FIELDS)}")
        unknown = set(fields) - OVERRIDABLE_FIELDS
        if unknown:
            raise AlarmSettingsError(
                f"alarms[{name!r}]: unknown fields {sorted(unknown)}; allowed: {sorted(OVERRIDABLE_FIELDS)}"
            )
        checked = {key: _checked(name, key, value) for key, value in fields.items()}
        settings[name] = replace(settings[name], **checked)  # type: ignore[arg-type]
        check_window(name, settings[name], settings[name].period_minutes or 1)
    return settings


def check_window(name: str, setting: AlarmSetting, period_minutes: int) -> None:
    """CloudWatch evaluates at most one day of periods."""
    if setting.evaluation_periods * period_minutes > 1440:
        raise AlarmSettingsError(
            f"alarms[{name!r}]: evaluation_periods x period_minutes is over CloudWatch's one day"
        )


def _checked(name: str, key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AlarmSettingsError(f"alarms[{name!r}].{key} must be a number, got {value!r}")
    if key == "threshold":
        if value < 0:
            raise AlarmSettingsError(f"alarms[{name!r}].threshold must be >= 0")
        return value
    if value != int(value) or not 1 <= value <= (1440 if key == "period_minutes" else 100):
        raise AlarmSettingsError(f"alarms[{name!r}].{key} must be a whole number in range, got {value!r}")
    return int(value)


def checked_email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not EMAIL.match(value):
        raise AlarmSettingsError(f"alarm_email must be an e-mail address, got {value!r}")
    return value
