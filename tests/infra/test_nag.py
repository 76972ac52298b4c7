"""cdk-nag (AwsSolutions): no unacknowledged error; every acknowledgment has a reason."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from infra.stack import nag_errors
from tests.infra.conftest import Synth


def test_synth_validation_report_has_no_awssolutions_error(synth: Synth) -> None:
    errors = [
        f"{violation['ruleName']} at {[c['constructPath'] for c in violation['violatingConstructs']]}"
        for report in synth.validation_report.get("pluginReports", [])
        for violation in report["violations"]
        if violation["severity"] == "error"
    ]
    assert synth.validation_report, "synth wrote no validation report"
    assert errors == []


def test_no_unacknowledged_awssolutions_error(synth: Synth) -> None:
    assert nag_errors(synth.app) == []


def test_the_check_finds_errors_when_there_are_some() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Unsafe")
    s3.Bucket(stack, "Bucket")  # no SSL enforcement, no access logs
    errors = nag_errors(app)
    assert any(error.startswith("AwsSolutions-S10 ") for error in errors), errors
    assert any(error.startswith("AwsSolutions-S1 ") for error in errors), errors


def test_every_acknowledgment_has_a_one_line_reason(synth: Synth) -> None:
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in dict(entry.data).items():
                    acknowledged[(construct.node.path, rule)] = reason
    assert acknowledged
    for (path, rule), reason in acknowledged.items():
        assert "AwsSolutions-" in rule, (path, rule)
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason, (path, rule)
        assert len(reason) <= 120, (path, rule)
