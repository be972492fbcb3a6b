from __future__ import annotations

import pathlib
from typing import Any

import orjson
import pytest

from archiver.formats.catalogue import CATEGORIES, OTHER, category_of
from archiver.formats.envelopes import (
    ACTIVITY_API,
    ACTIVITY_EVENT,
    JOB_DETAILS,
    JOB_HISTORY,
    JOB_STATUS,
    JOB_SUMMARY,
    PROJECT_DEPLOYMENT,
    USER_ACTIVITY,
    describe_document,
    read_envelope,
)

CASES = pathlib.Path(__file__).parents[2] / "cases"


def load(name: str) -> Any:
    return orjson.loads((CASES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "stream_type", "body_id"),
    [
        ("job_history_success.json", JOB_HISTORY, "j-AEcaNzd9-dGQ4Bf"),
        ("job_history_failure.json", JOB_HISTORY, "j-AEcaQsxm-Ec4PRe"),
        ("job_history_summary_fixed.json", JOB_SUMMARY, "job-123456789"),
        ("job_status_only.json", JOB_STATUS, "job-000001"),
        ("job_details.json", JOB_DETAILS, "j-1234ABC"),
        ("job_details_oversized.json", JOB_DETAILS, "j-1234BIG"),
        ("activity_api_record.json", ACTIVITY_API, 656541),
    ],
)
def test_each_stream_type_is_recognised_by_content(name: str, stream_type: str, body_id: object) -> None:
    # GIVEN a sample of one stream type
    document = load(name)
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN exactly one body of the right stream type comes out
    assert [envelope.stream_type for envelope in envelopes] == [stream_type]
    assert envelopes[0].body["id"] == body_id


@pytest.mark.parametrize(
    ("name", "stream_type", "event"),
    [
        ("user_login.json", ACTIVITY_EVENT, "user_login"),
        ("recipe_renamed.json", ACTIVITY_EVENT, "recipe_renamed"),
        ("user_activity.json", USER_ACTIVITY, "recipe_stopped"),
        ("log_message_str_recipe_started.json", USER_ACTIVITY, "recipe_started"),
        ("user_activity_string_only.json", USER_ACTIVITY, "recipe_stopped"),
    ],
)
def test_activity_events_are_found_bare_wrapped_or_encoded(name: str, stream_type: str, event: str) -> None:
    # GIVEN an activity event, bare, in a wrapper, or as a JSON string
    document = load(name)
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN the event object comes out with its stream type
    assert len(envelopes) == 1
    assert envelopes[0].stream_type == stream_type
    assert envelopes[0].body["event"] == event


def test_project_deployment_is_recognised_from_its_flat_keys() -> None:
    # GIVEN the flat project deployment sample (no event key at all)
    document = load("project_deployment.json")
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN the whole record is the body
    assert [envelope.stream_type for envelope in envelopes] == [PROJECT_DEPLOYMENT]
    assert envelopes[0].body is document


def test_the_structured_object_wins_over_its_string_copy() -> None:
    # GIVEN the user activity sample, whose log object and log_message string disagree on names
    document = load("user_activity.json")
    # WHEN its envelope is read
    (envelope,) = read_envelope(document)
    # THEN the object is used, not the string
    assert envelope.from_string is False
    assert envelope.body["user"]["name"] == "Taylor Cruz"
    assert envelope.user_id == "99999"


def test_a_string_copy_that_does_not_parse_is_ignored_when_the_object_is_there() -> None:
    # GIVEN the full job details sample, whose Log_Str copy is not valid JSON
    document = load("job_details.json")
    # WHEN its envelope is read
    (envelope,) = read_envelope(document)
    # THEN the Log object is the body and the wrapper's clock comes along
    assert envelope.body is document["Log"]
    assert envelope.from_string is False
    assert envelope.time_us == 1694081235979000


def test_the_string_copy_is_read_when_no_object_is_there() -> None:
    # GIVEN full job details whose template kept only the Log_Str copy
    document = load("job_details_log_str_only.json")
    # WHEN its envelope is read
    (envelope,) = read_envelope(document)
    # THEN the parsed copy is the body, marked as coming from a string
    assert envelope.from_string is True
    assert envelope.stream_type == JOB_DETAILS
    assert envelope.body["id"] == "j-AEcaQsxm-Ec4PRe"


def test_wrapper_extras_travel_with_the_job() -> None:
    # GIVEN the job status and job summary wrappers
    status = read_envelope(load("job_status_only.json"))[0]
    summary = read_envelope(load("job_history_summary_fixed.json"))[0]
    # THEN the status wrapper's UserID and the summary's clock are carried
    assert status.user_id == "12345"
    assert summary.time_us == 1703275739238000
    assert summary.user_id is None


def test_a_custom_wrapper_holding_a_list_yields_every_event_in_order() -> None:
    # GIVEN {"logEntries": [event, event], ...}
    document = load("custom_wrapper_log_entries.json")
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN both events come out, positioned in document order
    assert [envelope.body["event"] for envelope in envelopes] == ["recipe_started", "recipe_stopped"]
    assert [envelope.position for envelope in envelopes] == [0, 1]
    assert {envelope.stream_type for envelope in envelopes} == {USER_ACTIVITY}


def test_a_bare_list_of_jobs_yields_job_history_bodies() -> None:
    # GIVEN a JSON array of two bare jobs
    document = [load("job_history_success.json"), load("job_history_failure.json")]
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN both are bare job history, in order
    assert [envelope.stream_type for envelope in envelopes] == [JOB_HISTORY, JOB_HISTORY]
    assert [envelope.body["id"] for envelope in envelopes] == ["j-AEcaNzd9-dGQ4Bf", "j-AEcaQsxm-Ec4PRe"]


def test_wrapper_key_names_do_not_decide_anything() -> None:
    # GIVEN a job under a key no template documents, and a junk dict under "Log"
    job = load("job_status_only.json")["log"]
    document = {"whatever": {"nested": job}, "Log": {"not": "a job"}}
    # WHEN its envelope is read
    envelopes = read_envelope(document)
    # THEN the job is found by its content, and only it
    assert len(envelopes) == 1
    assert envelopes[0].body is job


def test_the_search_is_bounded_in_depth() -> None:
    # GIVEN a job three levels down, and one four levels down
    job = load("job_status_only.json")["log"]
    three = {"a": {"b": [job]}}
    four = {"a": {"b": {"c": {"d": job}}}}
    # WHEN their envelopes are read
    # THEN the first is found and the second is not
    assert len(read_envelope(three)) == 1
    assert read_envelope(four) == []


def test_bodies_are_not_searched_inside() -> None:
    # GIVEN a job whose step output contains something that looks like an event
    job = load("job_history_success.json")
    job["lines"][0]["output"] = {
        "event": "user_login",
        "user": {"id": 1},
        "timestamp": "2020-05-02 02:39:22 UTC",
    }
    # WHEN its envelope is read
    envelopes = read_envelope(job)
    # THEN only the job is returned
    assert [envelope.stream_type for envelope in envelopes] == [JOB_HISTORY]


@pytest.mark.parametrize(
    "document",
    [None, 42, 1.5, True, "plain text", "", [], {}, [1, 2, 3], {"a": 1}, {"status": "ok"}, ["{not json"]],
)
def test_documents_without_a_body_give_nothing(document: object) -> None:
    # GIVEN a document of no recognised shape
    # WHEN its envelope is read
    # THEN nothing comes out, and nothing raises
    assert read_envelope(document) == []


def test_describe_document_names_shapes_and_counts_but_no_values() -> None:
    # GIVEN an unrecognised object holding a string copy that does not parse
    document = {"SecretKeyName": '{"event": "s3cr3t-value', "n": 4711}
    # WHEN it is described
    text = describe_document(document)
    # THEN the description is about shape only
    assert "2 keys" in text
    assert "did not parse" in text
    assert "s3cr3t" not in text
    assert "4711" not in text
    assert "SecretKeyName" not in text


@pytest.mark.parametrize(
    ("event", "category"),
    [
        ("user_login", "account"),
        ("user_logout", "account"),
        ("manifest_updated", "package"),
        ("package_exported", "package"),
        ("package_imported", "package"),
        ("recipe_created", "recipe"),
        ("recipe_updated", "recipe"),
        ("recipe_deleted", "recipe"),
        ("recipe_copied", "recipe"),
        ("recipe_renamed", "recipe"),
        ("recipe_started", "recipe"),
        ("recipe_stopped", "recipe"),
        ("folder_created", "folder"),
        ("folder_deleted", "folder"),
        ("team_invitation_created", "team"),
        ("team_invitation_accept", "team"),
        ("team_membership_deleted", "team"),
        ("connection_connected", "connection"),
        ("connection_disconnected", "connection"),
        ("connection_created", "connection"),
        ("connection_updated", "connection"),
        ("connection_deleted", "connection"),
        ("connector_updated", "connector"),
        ("connector_released", "connector_sdk"),
        ("project_deployed", "deployment"),
        ("lookup_table_truncated", "lookup_table"),
        ("api_endpoint_activated", "api_platform"),
        ("data_table_created", "workflow_apps"),
        ("environment_switched", "environment"),
    ],
)
def test_known_events_have_their_catalogue_category(event: str, category: str) -> None:
    # GIVEN an event name from the catalogue or the samples
    # WHEN it is categorised
    # THEN it gets its category
    assert category_of(event) == category


@pytest.mark.parametrize(
    ("event", "category"),
    [
        ("recipe_exploded", "recipe"),
        ("project_property_renamed", "property"),  # longest prefix wins over "project_"
        ("project_build_created", "project"),
        ("lookup_table_row_added", "lookup_table"),
        ("User_Group_Merged", "workflow_apps"),
        ("something_new", OTHER),
        ("", OTHER),
        ("recipe", OTHER),
    ],
)
def test_unknown_events_fall_back_to_their_prefix_then_other(event: str, category: str) -> None:
    # GIVEN an event name not in the table
    # WHEN it is categorised
    # THEN its prefix decides, else it is "other"
    assert category_of(event) == category


def test_every_catalogue_entry_is_a_lowercase_snake_case_name() -> None:
    # GIVEN the catalogue
    # THEN names are normalised, so lookups after lower() can match them
    assert all(name == name.strip().lower() and " " not in name for name in CATEGORIES)
