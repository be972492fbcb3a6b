"""The SAM template agrees with the code: Glue columns with schema.py, task inputs with task_handler."""

from __future__ import annotations

import pyarrow as pa
import pytest

from archiver.aws.tasks import parse_task
from archiver.formats.schema import PARTITIONED_TABLES, TABLES
from tests.unit.aws.template import all_states, definition, load_template, resolve

GLUE_TYPES = {
    pa.string(): "string",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.timestamp("us", tz="UTC"): "timestamp",
}
GLUE_TABLES = {
    "jobs": "JobsTable",
    "job_lines": "JobLinesTable",
    "activity": "ActivityTable",
    "quarantine": "QuarantineTable",
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_glue_columns_match_the_arrow_schema(table: str) -> None:
    # GIVEN the template's Glue table and schema.py's Arrow schema of the same table
    resource = load_template()["Resources"][GLUE_TABLES[table]]["Properties"]["TableInput"]
    columns = [(column["Name"], column["Type"]) for column in resource["StorageDescriptor"]["Columns"]]
    # THEN the same columns in the same order, with the Glue type of each Arrow type
    expected = [(field.name, GLUE_TYPES[field.type]) for field in TABLES[table]]
    assert columns == expected
    assert resource["Name"] == table
    assert resource["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")


@pytest.mark.parametrize("table", PARTITIONED_TABLES)
def test_partitioned_tables_project_the_date_folders(table: str) -> None:
    resource = load_template()["Resources"][GLUE_TABLES[table]]["Properties"]["TableInput"]
    assert resource["PartitionKeys"] == [{"Name": "date", "Type": "string"}]
    parameters = resource["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.date.format"] == "yyyy-MM-dd"
    # The location template names the hive folder, `date=${date}` ("${!date}" escapes Fn::Sub)
    template = parameters["storage.location.template"]["Fn::Sub"][0]
    assert template.endswith(f"{table}/date=${{!date}}/")


def test_named_queries_quote_the_reserved_date_column() -> None:
    resources = load_template()["Resources"].values()
    queries = [r["Properties"]["QueryString"] for r in resources if r["Type"] == "AWS::Athena::NamedQuery"]
    assert len(queries) == 3
    for query in queries:
        assert " date " not in query.replace('"date"', "")


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
        if state.get("Resource") == "arn:aws:states:::lambda:invoke"
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
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    event = function["Events"]["Objects"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == function["ReservedConcurrentExecutions"]
