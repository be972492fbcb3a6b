"""The SAM template agrees with the code: task inputs with task_handler, publish events with
publish_handler, every function's handler and environment with archiver.aws, and only the publisher
may commit to the Iceberg tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.utils.config import Config

from archiver.aws import handlers
from archiver.aws.activity import activity_config_from_env, check_base_url
from archiver.aws.deployment import deployment_from_env
from archiver.aws.publisher import parse_publish
from archiver.aws.schedule import scheduled_time
from archiver.aws.tasks import parse_task
from tests.functional.aws.batches import record_for
from tests.unit.aws.events import load_event
from tests.unit.aws.template import (
    all_states,
    definition,
    load_template,
    parameter_defaults,
    render,
    resolve,
)
from tests.unit.aws.test_metrics import emitted


def test_the_tables_are_left_to_the_publisher_in_the_database_it_publishes_to() -> None:
    # GIVEN the template's resources and the environment every function gets
    resources = load_template()["Resources"]
    # THEN no Glue table is declared (the publisher creates the Iceberg tables on its first run)
    assert [name for name, r in resources.items() if r["Type"] == "AWS::Glue::Table"] == []
    assert resources["ArchiveDatabase"]["Type"] == "AWS::Glue::Database"
    # AND every function's namespace is that database, which the publisher may create tables in
    for name in functions():
        variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
        assert variables["ARCHIVER_CATALOG_NAMESPACE"] == {"Ref": "ArchiveDatabase"}, name
    assert function_environment("PublishFunction")["ARCHIVER_CATALOG_NAMESPACE"] == "archiver_stack"


def named_queries() -> dict[str, str]:
    resources = load_template()["Resources"]
    return {
        r["Properties"]["Name"]: r["Properties"]["QueryString"]
        for r in resources.values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }


def test_named_queries_read_the_iceberg_tables_by_partition_date_and_one_travels_in_time() -> None:
    queries = named_queries()
    assert len(queries) == 4
    for query in queries.values():
        # the Hive tables' `date` folder key is no column of the Iceberg tables
        assert '"date"' not in query and " date " not in query.lower().replace("date '", "")
    dated = [query for query in queries.values() if "FROM quarantine" not in query]
    assert all("partition_date" in query for query in dated)
    travelling = [query for query in queries.values() if "FOR TIMESTAMP AS OF" in query]
    assert len(travelling) == 1


def test_every_task_input_the_state_machine_sends_is_one_task_handler_accepts() -> None:
    # GIVEN the backfill definition and the state it carries after its Window and Plan states
    machine = definition()
    states = all_states(machine["States"])
    after_plan = {
        "window": {"since": "2024-08-30", "until": None},
        "plan": {"manifest": {"bucket": "b", "key": "archive/_archiver/plans/x.jsonl"}, "units": 2},
    }
    item = resolve(
        states["ArchiveUnits"]["ItemSelector"],
        after_plan,
        {"Map": {"Item": {"Value": {"unit": "day=2024-09-01"}}}},
    )
    lambda_tasks = {
        name: state
        for name, state in states.items()
        if state.get("Resource") == "arn:aws:states:::lambda:invoke" and name != "Publish"
    }
    # WHEN every Lambda task's Payload is filled in as Step Functions would
    payloads = {}
    for name, state in lambda_tasks.items():
        parameters = state["Parameters"]
        assert parameters["FunctionName"] == "${BackfillFunctionArn}"
        state_input = item if name == "ArchiveUnit" else after_plan
        payloads[name] = resolve(parameters, state_input)["Payload"]
    # THEN each is a task task_handler accepts, with the action the state is named for
    actions = {name: parse_task(payload).action for name, payload in payloads.items()}
    assert actions == {"Plan": "plan", "ArchiveUnit": "compact", "Verify": "verify"}
    assert parse_task(payloads["ArchiveUnit"]).unit == "day=2024-09-01"


def test_the_backfill_publishes_after_its_map_and_verifies_whatever_the_publish_did() -> None:
    # GIVEN the backfill definition
    states = definition()["States"]
    publish = states["Publish"]
    # THEN the map goes on to Publish, which invokes the publisher with an event it accepts
    assert states["ArchiveUnits"]["Next"] == "Publish"
    assert publish["Parameters"]["FunctionName"] == "${PublishFunctionArn}"
    substitutions = load_template()["Resources"]["BackfillStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    assert substitutions["PublishFunctionArn"] == {"Fn::GetAtt": ["PublishFunction", "Arn"]}
    payload = resolve(publish["Parameters"], {})["Payload"]
    parse_publish(payload)
    assert payload == load_event("sfn_publish.json")
    # AND verify follows it, and follows it too when the publish fails (the scheduled publisher catches up)
    assert publish["Next"] == "Verify"
    assert publish["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.publish_error", "Next": "Verify"}
    ]
    # AND a publish throttled behind the scheduled one waits for it
    throttled = next(r for r in publish["Retry"] if r["ErrorEquals"] == ["Lambda.TooManyRequestsException"])
    assert throttled["IntervalSeconds"] * throttled["MaxAttempts"] >= 600
    # AND the state machine may invoke the publisher
    role = load_template()["Resources"]["BackfillStateMachineRole"]["Properties"]["Policies"][0]
    statements = {st["Sid"]: st for st in role["PolicyDocument"]["Statement"]}
    assert statements["InvokePublishFunction"]["Resource"][0] == {"Fn::GetAtt": ["PublishFunction", "Arn"]}


def test_the_distributed_map_reads_the_plans_manifest_and_is_bounded() -> None:
    states = definition()["States"]
    archive = states["ArchiveUnits"]
    assert archive["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert archive["ItemReader"]["ReaderConfig"] == {"InputType": "JSONL"}
    assert archive["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.plan.manifest.bucket",
        "Key.$": "$.plan.manifest.key",
    }
    assert isinstance(archive["ToleratedFailurePercentage"], int)
    assert archive["MaxConcurrencyPath"] == "$.limits.maxConcurrency"
    assert archive["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    # the Map's concurrency and the function's reserved concurrency are one parameter
    resources = load_template()["Resources"]
    function = resources["BackfillFunction"]["Properties"]
    substitutions = resources["BackfillStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert (
        function["ReservedConcurrentExecutions"]
        == substitutions["BackfillConcurrency"]
        == {"Ref": "BackfillConcurrency"}
    )
    assert (
        states["Window"]["Parameters"]["limits"]["maxConcurrency.$"]
        == "States.StringToJson('${BackfillConcurrency}')"
    )


def test_the_queue_outlasts_six_function_timeouts_and_redrives_to_a_longer_lived_dlq() -> None:
    resources = load_template()["Resources"]
    queue, dlq = resources["ObjectsQueue"]["Properties"], resources["ObjectsDeadLetterQueue"]["Properties"]
    function = resources["ObjectsFunction"]["Properties"]
    event = function["Events"]["Objects"]["Properties"]
    window = parameters()[event["MaximumBatchingWindowInSeconds"]["Ref"]]["MaxValue"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"] + window
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == function["ReservedConcurrentExecutions"]


def parameters() -> dict[str, Any]:
    return dict(load_template()["Parameters"])


def test_the_largest_batch_of_the_largest_notifications_fits_lambdas_payload() -> None:
    # GIVEN the largest batch the template allows, every message of the largest shape: an S3
    # notification wrapped in SNS, for a 1,024-byte key whose every character is URL-encoded
    event = load_template()["Resources"]["ObjectsFunction"]["Properties"]["Events"]["Objects"]["Properties"]
    size = parameters()[event["BatchSize"]["Ref"]]
    record = record_for("sns", "b" * 63, "+" * 1024, (5 * 2**30, "0" * 32 + "-10000"))
    assert "%2B" * 1024 in json.loads(record["body"])["Message"]
    # WHEN Lambda hands over a batch of them
    payload = len(json.dumps({"Records": [record] * size["MaxValue"]}))
    # THEN it stays under Lambda's 6 MB invocation payload; the default batch is a large one
    assert payload < 6 * 2**20
    assert size["Default"] >= 1000 and event["MaximumBatchingWindowInSeconds"] == {
        "Ref": "QueueBatchingWindowSeconds"
    }


# --- the functions ---------------------------------------------------------------------

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/workato-token-AbC123"
HANDLERS = {
    "ObjectsFunction": "sqs_handler",
    "NightlyFunction": "schedule_handler",
    "BackfillFunction": "task_handler",
    "ActivityFunction": "activity_handler",
    "PublishFunction": "publish_handler",
}


def functions() -> dict[str, dict[str, Any]]:
    resources = load_template()["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}


def function_environment(name: str, **parameters: Any) -> dict[str, str]:
    """The environment CloudFormation gives one function: Globals and its own, parameters filled in."""
    template = load_template()
    refs = {
        **parameter_defaults(),
        "SourceBucketName": "workato-logs",
        "ArchiveBucket": "stack-archive-1",
        "ArchiveDatabase": "archiver_stack",
    }
    refs.update(parameters)
    conditions = {
        "CreateArchiveBucket": refs["ArchiveBucketName"] == "",
        "HasAlarmTopic": refs["AlarmTopicArn"] != "",
    }
    variables = {
        **template["Globals"]["Function"]["Environment"]["Variables"],
        **template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {}),
    }
    return {key: str(render(value, refs, conditions)) for key, value in variables.items()}


def test_every_function_runs_a_handler_that_exists() -> None:
    # GIVEN every Lambda function of the template
    found = {name: r["Properties"]["Handler"] for name, r in functions().items()}
    # THEN each names a function of archiver.aws.handlers, the one meant for it
    assert found == {name: f"archiver.aws.handlers.{handler}" for name, handler in HANDLERS.items()}
    for handler in found.values():
        module, _, attribute = handler.rpartition(".")
        assert module == handlers.__name__ and callable(getattr(handlers, attribute))


def test_every_scheduled_input_carries_the_time_the_handlers_read() -> None:
    # GIVEN each ScheduleV2 event's Input, as Scheduler fills its context attribute
    inputs = {
        name: event["Properties"]["Input"]
        for name, function in functions().items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    }
    assert set(inputs) == {"NightlyFunction", "ActivityFunction", "PublishFunction"}
    fallback = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for text in inputs.values():
        event = json.loads(text.replace("<aws.scheduler.scheduled-time>", "2025-06-10T12:00:00Z"))
        # THEN the handlers take the scheduled time from it
        assert scheduled_time(event, fallback) == dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC)
    # AND the activity event in tests/events is exactly what Scheduler sends it
    activity_input = inputs["ActivityFunction"].replace(
        "<aws.scheduler.scheduled-time>", "2025-06-10T12:00:00Z"
    )
    assert json.loads(activity_input) == load_event("scheduler_activity.json")
    # AND the publisher accepts its own, which tests/events holds too
    publish_input = json.loads(
        inputs["PublishFunction"].replace("<aws.scheduler.scheduled-time>", "2025-06-10T12:00:00Z")
    )
    parse_publish(publish_input)
    assert publish_input == load_event("scheduler_publish.json")


@pytest.mark.parametrize(
    "name", ["ObjectsFunction", "NightlyFunction", "BackfillFunction", "PublishFunction"]
)
def test_the_archiving_functions_environment_is_one_their_handlers_accept(name: str) -> None:
    deployment = deployment_from_env(function_environment(name))
    assert deployment.source.url == "s3://workato-logs/"
    assert deployment.dest.url == "s3://stack-archive-1/"


def test_the_activity_functions_environment_is_one_its_handler_accepts() -> None:
    # GIVEN the environment the template gives the activity puller, with its parameters' defaults
    environ = function_environment("ActivityFunction", WorkatoApiTokenSecretArn=SECRET_ARN)
    # THEN activity_handler's configuration reads it: the archive, the base URL, the secret
    config = activity_config_from_env(environ)
    assert config.dest.url == "s3://stack-archive-1/"
    assert config.base_url == "https://www.workato.com"
    assert config.token_source.kind == "secret" and config.token_source.name == SECRET_ARN
    assert config.managed_users == () and config.settings.api_requests_per_minute == 60
    # AND with managed users and another data centre too
    config = activity_config_from_env(
        function_environment(
            "ActivityFunction",
            WorkatoApiTokenSecretArn=SECRET_ARN,
            WorkatoBaseUrl="https://app.eu.workato.com",
            WorkatoManagedUsers="101,202",
        )
    )
    assert config.base_url == "https://app.eu.workato.com" and config.managed_users == ("101", "202")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://www.workato.com", True),
        ("https://app.eu.workato.com/", True),
        ("https://app.jp.workato.com", True),
        ("https://workato.internal.example:8443", True),
        ("http://www.workato.com", False),
        ("https://www.workato.com/?x=1", False),
        ("www.workato.com", False),
        ("", False),
    ],
)
def test_the_base_url_parameter_allows_only_what_the_handler_accepts(url: str, allowed: bool) -> None:
    pattern = load_template()["Parameters"]["WorkatoBaseUrl"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, url)) is allowed
    if allowed:
        check_base_url(url)


@pytest.mark.parametrize(
    ("arn", "allowed"),
    [
        ("", True),
        (SECRET_ARN, True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:workato-9x8Y7z", True),
        ("arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/workato-token", False),  # no suffix
        ("archiver/workato-token", False),
        ("arn:aws:ssm:eu-west-1:111122223333:parameter/workato-token", False),
    ],
)
def test_the_secret_parameter_takes_only_a_full_secret_arn(arn: str, allowed: bool) -> None:
    pattern = load_template()["Parameters"]["WorkatoApiTokenSecretArn"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, arn)) is allowed


def test_the_activity_puller_exists_only_with_a_secret_and_may_read_only_it_and_the_archive() -> None:
    resources = load_template()["Resources"]
    conditions = load_template()["Conditions"]
    assert conditions["HasActivityPuller"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WorkatoApiTokenSecretArn"}, ""]}]
    }
    # GIVEN the puller and everything that belongs to it
    function = resources["ActivityFunction"]
    related = [
        name
        for name, resource in resources.items()
        if "Activity" in name and resource["Type"] != "AWS::Glue::Table"
    ]
    assert sorted(related) == ["ActivityErrorsAlarm", "ActivityFunction", "ActivityLogGroup"]
    # THEN all of it exists only when the secret is given
    assert {resources[name].get("Condition") for name in related} == {"HasActivityPuller"}
    properties = function["Properties"]
    # AND it may write the archive and read the one secret (kms:Decrypt only for a customer key), no more
    writer, reader, inline = properties["Policies"]
    assert writer == {"Ref": "ArchiveWriterPolicy"} and reader == POLICY_READER
    read_secret, decrypt = inline["Statement"]
    assert read_secret == {
        "Sid": "ReadTheApiToken",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "WorkatoApiTokenSecretArn"},
    }
    condition, statement, otherwise = decrypt["Fn::If"]
    assert condition == "HasActivityKmsKey" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "kms:Decrypt" and statement["Resource"] == {
        "Ref": "WorkatoApiTokenKmsKeyArn"
    }
    assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    # AND one pull at a time, hourly by default, with its own log group and errors alarm
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["LoggingConfig"] == {"LogGroup": {"Ref": "ActivityLogGroup"}}
    schedule = properties["Events"]["Hourly"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "ActivityScheduleExpression"}
    assert parameter_defaults()["ActivityScheduleExpression"] == "rate(1 hour)"
    alarm = resources["ActivityErrorsAlarm"]["Properties"]
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ActivityFunction"}}]
    log_group = resources["ActivityLogGroup"]["Properties"]
    assert log_group == resources["NightlyLogGroup"]["Properties"]


def test_the_dashboard_charts_only_metrics_the_handlers_emit() -> None:
    # GIVEN the dashboard's body, its substitutions filled in as CloudFormation would
    dashboard = load_template()["Resources"]["ArchiverDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body, names = dashboard
    filled = body
    for name in [*names, "AWS::Region"]:
        filled = filled.replace("${" + name + "}", "x")
    # WHEN it is read as JSON
    widgets = json.loads(filled)["widgets"]
    # THEN every metric of the Archiver namespace it charts is one a handler emits
    archiver_metrics = {name for namespace, name in charted_metrics(widgets) if namespace == "Archiver"}
    kinds = ("list", "get", "put", "delete", "head")
    by_store = {role: dict.fromkeys(kinds, 0) for role in ("source", "dest")}
    full_report = {name: 0 for name in ("objects_archived", "objects_quarantined", "objects_failed")}
    emitted_by_reports = set(emitted({**full_report, "by_store": by_store}))
    source = Path(handlers.__file__).read_text()
    assert {"ObjectsArchived", "SourceGetRequests", "ArchivePutRequests"} <= archiver_metrics
    assert all(name in emitted_by_reports or f'"{name}"' in source for name in archiver_metrics)


def charted_metrics(widgets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, metric) of every metric row; "." repeats the row above's value, as CloudWatch reads it."""
    found: set[tuple[str, str]] = set()
    for widget in widgets:
        namespace = ""
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], str):
                namespace = namespace if row[0] == "." else row[0]
                found.add((namespace, row[1]))
    return found


POLICY_READER = {"Fn::If": ["HasPolicySettings", {"Ref": "PolicyReaderPolicy"}, {"Ref": "AWS::NoValue"}]}
KEY_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/policy-key-AbC123"


@pytest.mark.parametrize("name", sorted(name for name in HANDLERS if name != "PublishFunction"))
def test_every_function_is_told_the_policy_and_its_key_and_may_read_only_those(name: str) -> None:
    # GIVEN a function's environment with a policy object and a key secret
    environ = function_environment(
        name, PolicyLocation="s3://config-bucket/archiver/policy.toml", PolicyKeySecretArn=KEY_SECRET_ARN
    )
    # THEN the handlers read both from where the parameters say
    assert environ["ARCHIVER_POLICY"] == "s3://config-bucket/archiver/policy.toml"
    assert environ["ARCHIVER_POLICY_KEY_SECRET"] == KEY_SECRET_ARN
    # AND with the defaults, neither is set (the default policy, no key)
    environ = function_environment(name, WorkatoApiTokenSecretArn=SECRET_ARN)
    assert (environ["ARCHIVER_POLICY"], environ["ARCHIVER_POLICY_KEY_SECRET"]) == ("", "")
    # AND the function carries the policy reader when either is given
    assert POLICY_READER in functions()[name]["Properties"]["Policies"]


def test_the_publisher_writes_no_rows_and_is_given_neither_the_policy_nor_its_key() -> None:
    # GIVEN the publisher's environment in a stack with a policy object and a key secret
    environ = function_environment(
        "PublishFunction",
        PolicyLocation="s3://config-bucket/archiver/policy.toml",
        PolicyKeySecretArn=KEY_SECRET_ARN,
    )
    # THEN it loads neither, and may read neither
    assert (environ["ARCHIVER_POLICY"], environ["ARCHIVER_POLICY_KEY_SECRET"]) == ("", "")
    assert POLICY_READER not in functions()["PublishFunction"]["Properties"]["Policies"]


def test_the_policy_reader_grants_the_one_object_and_the_one_secret() -> None:
    template = load_template()
    conditions = template["Conditions"]
    assert conditions["HasPolicySettings"] == {
        "Fn::Or": [{"Condition": "HasPolicyObject"}, {"Condition": "HasPolicyKey"}]
    }
    reader = template["Resources"]["PolicyReaderPolicy"]
    assert reader["Condition"] == "HasPolicySettings"
    read_object, read_key = reader["Properties"]["PolicyDocument"]["Statement"]
    # GIVEN each statement, present only with its parameter
    condition, statement, otherwise = read_object["Fn::If"]
    assert condition == "HasPolicyObject" and otherwise == {"Ref": "AWS::NoValue"}
    # THEN s3:GetObject on the policy's object alone (its ARN from the s3:// URL)
    assert statement["Action"] == "s3:GetObject"
    text, local = statement["Resource"]["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:s3:::${Object}"
    assert local == {"Object": {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "PolicyLocation"}]}]}}
    # AND secretsmanager:GetSecretValue on the key's secret alone
    condition, statement, otherwise = read_key["Fn::If"]
    assert condition == "HasPolicyKey" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == {"Ref": "PolicyKeySecretArn"}


@pytest.mark.parametrize(
    ("location", "allowed"),
    [
        ("", True),
        ("s3://config-bucket/archiver/policy.toml", True),
        ("s3://config-bucket/policy.toml", True),
        ("s3://config-bucket/", False),
        ("s3://config-bucket/policies/*", False),
        ("policy.toml", False),
        ("https://example.com/policy.toml", False),
    ],
)
def test_the_policy_location_parameter_takes_one_s3_object(location: str, allowed: bool) -> None:
    pattern = load_template()["Parameters"]["PolicyLocation"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, location)) is allowed
    key_pattern = load_template()["Parameters"]["PolicyKeySecretArn"]["AllowedPattern"]
    assert re.fullmatch(key_pattern, KEY_SECRET_ARN) and not re.fullmatch(key_pattern, "archiver/policy-key")


# --- the Iceberg publisher -------------------------------------------------------------

GLUE_WRITES = ("glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:CreateDatabase", "glue:*")


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline policy statements of a function (managed policies are referenced, and hold no Glue)."""
    found = []
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(policy["Statement"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def test_only_the_publisher_may_write_to_the_glue_catalog() -> None:
    # GIVEN every function, every managed policy and role of the template
    resources = load_template()["Resources"]
    granting = {
        name
        for name, resource in resources.items()
        if any(
            action.startswith("glue:") and action in GLUE_WRITES
            for statement in statements(resource) + _policy_statements(resource)
            for action in actions(statement)
        )
    }
    # THEN the publisher, and nothing else, may create or update Glue tables
    assert granting == {"PublishFunction"}


def _policy_statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    properties = resource.get("Properties", {})
    found = list(properties.get("PolicyDocument", {}).get("Statement", []))
    for policy in properties.get("Policies", []):
        if isinstance(policy, dict) and "PolicyDocument" in policy:
            found.extend(policy["PolicyDocument"]["Statement"])
    return found


def test_the_publisher_may_publish_the_databases_tables_and_nothing_more() -> None:
    function = functions()["PublishFunction"]
    properties = function["Properties"]
    # GIVEN its policies: the archive writer's, and one Glue statement
    writer, _inline = properties["Policies"]
    assert writer == {"Ref": "ArchiveWriterPolicy"}
    (glue,) = statements(function)
    # THEN what pyiceberg's Glue catalog calls to load, create and commit tables, on that database only
    assert sorted(actions(glue)) == [
        "glue:CreateTable",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:UpdateTable",
    ]
    arns = [resource["Fn::Sub"] for resource in glue["Resource"]]
    prefix = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
    assert arns == [
        prefix + "catalog",
        prefix + "database/${ArchiveDatabase}",
        prefix + "table/${ArchiveDatabase}/*",
    ]
    # AND it reads no source: the SourceReaderPolicy is not its
    assert {"Ref": "SourceReaderPolicy"} not in properties["Policies"]


def test_one_publisher_at_a_time_on_a_short_schedule_with_its_own_log_group() -> None:
    properties = functions()["PublishFunction"]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["LoggingConfig"] == {"LogGroup": {"Ref": "PublishLogGroup"}}
    schedule = properties["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "PublishScheduleExpression"}
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    pattern = load_template()["Parameters"]["PublishScheduleExpression"]["AllowedPattern"]
    for expression, allowed in (
        ("rate(1 minute)", True),
        ("rate(5 minutes)", True),
        ("rate(1 minutes)", False),
        ("rate(2 minute)", False),
        ("cron(* * * * ? *)", False),
    ):
        assert bool(re.fullmatch(pattern, expression)) is allowed, expression


@pytest.mark.parametrize("name", [name for name in HANDLERS if name != "PublishFunction"])
def test_the_unit_workers_know_the_archive_has_tables_but_have_no_catalog_to_commit_to(name: str) -> None:
    # GIVEN the environment of a function that archives (commits to the ledger)
    environ = function_environment(name, WorkatoApiTokenSecretArn=SECRET_ARN)
    # THEN its settings name the catalog, so its commits leave superseded files to the publisher
    assert deployment_from_env(environ).settings.catalog == "glue"
    # AND pyiceberg is given no catalog in it (a publish there would stop at a ConfigError)
    assert not [key for key in environ if key.upper().startswith("PYICEBERG_")]


def test_the_publishers_environment_configures_the_glue_catalog_pyiceberg_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the publisher's environment (Lambda adds the region and credentials)
    environ = function_environment("PublishFunction")
    for key in [key for key in os.environ if key.upper().startswith("PYICEBERG_")]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    # THEN the catalog ARCHIVER_CATALOG names is a Glue catalog, configured by the environment alone
    settings = deployment_from_env(environ).settings
    assert settings.catalog == "glue" and settings.catalog_namespace == "archiver_stack"
    assert Config().get_catalog_config(settings.catalog) == {"type": "glue"}


def test_the_default_freshness_fits_the_target_with_a_minute_to_archive_and_publish() -> None:
    # GIVEN the defaults: batching window, the publish schedule's period, and the freshness target
    defaults = parameter_defaults()
    window = int(defaults["QueueBatchingWindowSeconds"])
    match = re.fullmatch(r"rate\((\d+) minutes?\)", defaults["PublishScheduleExpression"])
    assert match
    period = int(match.group(1)) * 60
    target = int(defaults["FreshnessTargetSeconds"])
    # THEN window + period leaves at least a minute of the 5-minute target for archiving a batch and a
    # publish (seconds each: see the README's freshness paragraph)
    assert target == 300
    assert window + period + 60 <= target
    # AND the lag alarm watches for successful publishes over that target
    alarm = load_template()["Resources"]["PublishLagAlarm"]["Properties"]
    assert alarm["MetricName"] == "PublishesSucceeded" and alarm["Period"] == {
        "Ref": "FreshnessTargetSeconds"
    }
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"


def test_the_publish_failure_alarm_counts_reported_failures_and_failed_invocations() -> None:
    alarm = load_template()["Resources"]["PublishFailedAlarm"]["Properties"]
    metrics = {metric["Id"]: metric for metric in alarm["Metrics"]}
    assert metrics["reported"]["MetricStat"]["Metric"]["MetricName"] == "PublishFailures"
    assert metrics["errors"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "PublishFunction"}}
    ]
    assert '"PublishFailures"' in Path(handlers.__file__).read_text()
