"""A `python -m devserver` subprocess has its books read through its own moto endpoint when it
stops (devserver_process.running_devserver): books it leaves unbalanced fail the block, and
those of this process's in-process gateway are not what is read."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from gateway.runtime import resources
from gateway.storage.budgets import budget_pk

from devserver.aws import DEFAULT_REGION, DUMMY_CREDENTIALS
from tests.integration.devserver_process import devserver_env, running_devserver


def test_a_budget_off_its_entries_in_the_subprocess_fails_its_block(tmp_path: Path) -> None:
    env = devserver_env(tmp_path / "data", DEVSERVER_DATA_DIR="none")
    with (
        pytest.raises(AssertionError, match=r"the books do not balance.*headroom_off.*spend_off") as failed,
        running_devserver(env, tmp_path / "devserver.log") as server,
    ):
        assert server.books() == {}
        client = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=server.aws_endpoint_url,
            region_name=DEFAULT_REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        # spend without a spend entry, headroom off max_budget - spend - holds
        client.put_item(
            TableName=server.table_name,
            Item={
                resources.TABLE_PARTITION_KEY: {"S": budget_pk("key-unbalanced")},
                "key_id": {"S": "key-unbalanced"},
                "spend": {"N": "1"},
                "holds": {"N": "0"},
                "headroom": {"N": "5"},
                "max_budget": {"N": "10"},
            },
        )
    assert "key-unbalanced" in str(failed.value)
    assert server.process.poll() is not None  # stopped all the same
