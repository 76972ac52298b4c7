"""The data stack: table, bucket and secrets, all retained."""

from __future__ import annotations

from aws_cdk.assertions import Match
from gateway.runtime import resources
from gateway.service.plan import runner

from infra.stateful import SECRET_SPECS
from tests.infra.conftest import Synth
from tests.infra.template_tools import resources_of


def test_every_stateful_resource_is_retained(synth: Synth) -> None:
    stateful = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")
    found = 0
    for resource in synth.data_json["Resources"].values():
        if resource["Type"] in stateful:
            assert resource["DeletionPolicy"] == "Retain", resource["Type"]
            assert resource["UpdateReplacePolicy"] == "Retain", resource["Type"]
            found += 1
    assert found == 2 + len(SECRET_SPECS)
    assert synth.data_termination_protection


def test_the_api_stack_holds_no_stateful_resource(synth: Synth) -> None:
    types = {resource["Type"] for resource in synth.api_json["Resources"].values()}
    assert not types & {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret"}


def test_table(synth: Synth) -> None:
    (table,) = resources_of(synth.data_json, "AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": resources.TABLE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    # SSEEnabled without SSEType/key: the AWS-managed KMS key (aws/dynamodb).
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["KeySchema"] == [{"AttributeName": resources.TABLE_PARTITION_KEY, "KeyType": "HASH"}]
    assert all(a["AttributeType"] == "S" for a in properties["AttributeDefinitions"])
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}
    assert set(indexes) == set(resources.TABLE_INDEXES)
    for name, (partition_key, sort_key) in resources.TABLE_INDEXES.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": partition_key, "KeyType": "HASH"},
            {"AttributeName": sort_key, "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}


def test_bucket_encrypted_private_and_expiring(synth: Synth) -> None:
    synth.data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    (bucket,) = resources_of(synth.data_json, "AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    assert by_prefix[resources.UPLOAD_PARTS_PREFIX]["ExpirationInDays"] == resources.UPLOAD_PARTS_EXPIRE_DAYS
    assert (
        by_prefix[resources.CACHED_CONTENT_PREFIX]["ExpirationInDays"] == resources.CACHED_CONTENT_EXPIRE_DAYS
    )
    for prefix in (resources.BEDROCK_INPUT_PREFIX, resources.BEDROCK_OUTPUT_PREFIX):
        assert by_prefix[prefix]["ExpirationInDays"] == resources.BEDROCK_OBJECTS_EXPIRE_DAYS
    assert by_prefix[None]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # a plan's files outlive its window and the longest a part runs past it (Bedrock's 168 h)
    plan_days = by_prefix[resources.PLAN_FILES_PREFIX]["ExpirationInDays"]
    assert plan_days == resources.PLAN_FILES_EXPIRE_DAYS
    assert plan_days * 86400 > runner.WINDOW_SECONDS + 168 * 3600
    assert all(rule["Status"] == "Enabled" for rule in rules)


def test_bucket_enforces_ssl(synth: Synth) -> None:
    synth.data.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:*",
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_secrets_are_generated_by_cloudformation(synth: Synth) -> None:
    secrets = {
        s["Properties"]["Name"]: s["Properties"]
        for s in resources_of(synth.data_json, "AWS::SecretsManager::Secret").values()
    }
    assert set(secrets) == {
        resources.DEFAULT_MASTER_KEY_SECRET,
        resources.DEFAULT_PROVIDER_KEYS_SECRET,
        resources.DEFAULT_KEY_PEPPER_SECRET,
    }
    for name, properties in secrets.items():
        assert "SecretString" not in properties, name
        assert "GenerateSecretString" in properties, name
    master = secrets[resources.DEFAULT_MASTER_KEY_SECRET]["GenerateSecretString"]
    assert master == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 48}
    provider = secrets[resources.DEFAULT_PROVIDER_KEYS_SECRET]["GenerateSecretString"]
    assert provider["SecretStringTemplate"] == "{}"
    assert provider["GenerateStringKey"] == "_placeholder"


def test_outputs_name_the_resources(synth: Synth) -> None:
    outputs = synth.data_json["Outputs"]
    assert outputs["MasterKeySecretName"]["Value"] == resources.DEFAULT_MASTER_KEY_SECRET
    assert outputs["ProviderKeysSecretName"]["Value"] == resources.DEFAULT_PROVIDER_KEYS_SECRET
    (table_id,) = resources_of(synth.data_json, "AWS::DynamoDB::Table")
    (bucket_id,) = resources_of(synth.data_json, "AWS::S3::Bucket")
    assert outputs["TableName"]["Value"] == {"Ref": table_id}
    assert outputs["BucketName"]["Value"] == {"Ref": bucket_id}
