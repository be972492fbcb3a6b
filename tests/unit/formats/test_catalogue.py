"""The catalogue against Workato's activity audit log reference (seed 000), read from the file itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archiver.formats.catalogue import CATEGORIES, OTHER, REFERENCE, category_of, is_known

REPO = Path(__file__).resolve().parents[3]
SEEDS = sorted((REPO.parent / "shared" / "seeds").glob("000_*.txt"))
HEADING = re.compile(r"^(?P<section>[A-Z][A-Za-z ]+ activities)$")


def reference_rows() -> dict[str, list[str]]:
    """Each section heading of the reference, and the rows of its activity table (label + description).

    Tables start with an "ActivityDescription" header line and end at a blank line;
    the page's text runs each label into its description with no separator.
    """
    if not SEEDS:
        pytest.skip(
            f"the activity audit log reference (seed 000) is not under {REPO.parent / 'shared' / 'seeds'}"
        )
    sections: dict[str, list[str]] = {}
    section: str | None = None
    in_table = False
    for line in SEEDS[0].read_text(encoding="utf-8").splitlines():
        text = line.strip()
        heading = HEADING.match(text)
        if heading:
            section, in_table = heading["section"], False
            sections[section] = []
        elif text.startswith("ActivityDescription"):
            in_table = section is not None
        elif in_table and section is not None:
            if not text:
                in_table = False
            else:
                sections[section].append(text)
    return sections


def label_of(row: str, labels: list[str]) -> str | None:
    """The longest known label the row starts with, where the description follows at once."""
    fits = [label for label in labels if row.startswith(label) and row[len(label) : len(label) + 1].isupper()]
    return max(fits, key=len, default=None)


def test_the_reference_lists_every_section_and_activity_we_expect() -> None:
    # GIVEN the reference as the seed file gives it
    sections = reference_rows()
    # THEN its sections are the catalogue's, with as many activities as the catalogue has labels
    assert set(sections) == set(REFERENCE)
    assert sum(len(rows) for rows in sections.values()) == sum(len(labels) for labels in REFERENCE.values())


def test_every_activity_of_the_reference_has_a_category() -> None:
    # GIVEN every row of every activity table in the reference
    missing, uncategorised = [], []
    for section, rows in reference_rows().items():
        labels = list(REFERENCE.get(section, {}))
        for row in rows:
            # WHEN its label is looked up in the catalogue
            label = label_of(row, labels)
            if label is None:
                missing.append(f"{section}: {row[:60]}")
                continue
            # THEN each event name the label stands for has a category other than "other"
            for event in REFERENCE[section][label]:
                if category_of(event) == OTHER or not is_known(event):
                    uncategorised.append(f"{section}: {label} -> {event}")
    assert not missing, "activities of the reference missing from catalogue.REFERENCE: " + "; ".join(missing)
    assert not uncategorised, "event names without a category: " + "; ".join(uncategorised)


def test_every_label_in_the_catalogue_is_one_the_reference_lists() -> None:
    # GIVEN the reference's rows
    sections = reference_rows()
    # THEN no label was invented: each one starts a row of its section
    for section, labels in REFERENCE.items():
        found = {label_of(row, list(labels)) for row in sections[section]}
        assert set(labels) == found, f"{section}: {sorted(set(labels) - found)}"


@pytest.mark.parametrize(
    ("event", "category"),
    [
        ("user_login_failed", "account"),
        ("saml_jit_provisioning_enabled", "account"),
        ("team_membership_updated", "team"),
        ("tag_added", "tag"),
        ("connector_released", "connector_sdk"),
        ("common_data_model_deleted", "common_data_model"),
        ("lookup_table_csv_imported", "lookup_table"),
        ("message_template_updated", "message_template"),
        ("account_property_created", "property"),
        ("topic_updated", "event_topic"),
        ("api_collection_deleted", "api_platform"),
        ("access_profile_api_key_refreshed", "api_platform"),
        ("app_user_group_role_assigned", "workflow_apps"),
        ("workspace_environment_deleted", "workspace"),
        ("external_id_environment_updated", "account"),
    ],
)
def test_reference_events_land_in_their_area(event: str, category: str) -> None:
    assert category_of(event) == category


def test_unknown_names_are_not_known_even_when_a_prefix_places_them() -> None:
    # GIVEN names the catalogue does not list
    # THEN is_known says so (the run counts them), and a name with no known prefix is "other"
    assert not is_known("recipe_exploded") and category_of("recipe_exploded") == "recipe"
    assert not is_known("quantum_flux_enabled") and category_of("quantum_flux_enabled") == OTHER
    assert all(is_known(name) for name in CATEGORIES)
    assert is_known(" User_Login ")
