from __future__ import annotations

import pytest

from archiver.config import LISTING_CHOICES, Settings, file_io_properties, settings_from_env
from archiver.engine.listing import ListingOptions
from archiver.engine.scans import Listing
from archiver.errors import ConfigError


def test_variables_override_the_defaults_and_empty_ones_are_ignored() -> None:
    settings = settings_from_env(
        {
            "ARCHIVER_COMPRESSION_LEVEL": "6",
            "ARCHIVER_PAYLOAD_COMPRESSION_LEVEL": "19",
            "ARCHIVER_CONCURRENCY": "",
        }
    )
    assert (settings.compression_level, settings.payload_compression_level) == (6, 19)
    assert settings.concurrency == Settings().concurrency


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARCHIVER_PAYLOAD_COMPRESSION_LEVEL": "23"}, "must be a zstd level from 1 to 22"),
        ({"ARCHIVER_COMPRESSION_LEVEL": "0"}, "ARCHIVER_COMPRESSION_LEVEL must be positive"),
        ({"ARCHIVER_CONCURRENCY": "many"}, "must be a whole number, got 'many'"),
        ({"AWS_RETRY_MODE": "eager"}, "AWS_RETRY_MODE must be legacy, standard or adaptive"),
        ({"ARCHIVER_LISTING": "inventory"}, "ARCHIVER_LISTING must be one of auto, folders, prefix, flat"),
        ({"ARCHIVER_LISTING_MAX_KEYS": "0"}, "ARCHIVER_LISTING_MAX_KEYS must be positive"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_env(environ)


def test_the_catalog_its_namespace_and_the_snapshot_retention_come_from_the_environment() -> None:
    # GIVEN no catalog settings, then all three set
    default = settings_from_env({})
    named = settings_from_env(
        {
            "ARCHIVER_CATALOG": "glue",
            "ARCHIVER_CATALOG_NAMESPACE": "audit_logs",
            "ARCHIVER_SNAPSHOT_RETENTION": "36h",
        }
    )
    # THEN the defaults are no catalog, `archiver`, 14 days; the variables override them
    assert (default.catalog, default.catalog_namespace, default.snapshot_retention_seconds) == (
        None,
        "archiver",
        14 * 86_400,
    )
    assert (named.catalog, named.catalog_namespace, named.snapshot_retention_seconds) == (
        "glue",
        "audit_logs",
        36 * 3_600,
    )
    assert settings_from_env({"ARCHIVER_SNAPSHOT_RETENTION": "3600"}).snapshot_retention_seconds == 3600
    # AND superseded files of an archive without tables go right after the commit by default
    assert default.retire_grace_seconds == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARCHIVER_SNAPSHOT_RETENTION": "two weeks"}, "ARCHIVER_SNAPSHOT_RETENTION"),
        ({"ARCHIVER_SNAPSHOT_RETENTION": "0d"}, "ARCHIVER_SNAPSHOT_RETENTION"),
        ({"ARCHIVER_CATALOG_NAMESPACE": "audit-logs; drop"}, "ARCHIVER_CATALOG_NAMESPACE"),
    ],
)
def test_bad_catalog_settings_are_refused_with_the_variable_named(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_env(environ)


def test_file_io_settings_follow_the_standard_aws_configuration() -> None:
    # GIVEN the standard AWS variables of a moto setup
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_DEFAULT_REGION": "eu-west-1"}
    # THEN pyiceberg's S3 FileIO gets the same endpoint and region, and nothing else (credentials
    # stay with the AWS SDK's own chain)
    assert file_io_properties(environ) == {"s3.endpoint": "http://127.0.0.1:5000", "s3.region": "eu-west-1"}
    assert file_io_properties({"AWS_ENDPOINT_URL_S3": "http://s3.local", "AWS_ENDPOINT_URL": "x"}) == {
        "s3.endpoint": "http://s3.local"
    }


def test_the_listing_plan_is_chosen_by_name_and_every_name_is_a_plan() -> None:
    # GIVEN each name ARCHIVER_LISTING accepts
    for name in LISTING_CHOICES:
        # WHEN it is set
        settings = settings_from_env({"ARCHIVER_LISTING": name, "ARCHIVER_LISTING_MAX_KEYS": "5000"})
        # THEN the settings carry it, and the engine knows it as a plan
        assert settings.listing == name and settings.listing_max_keys == 5000
        assert ListingOptions.of(settings).choice == Listing(name)
    assert Settings().listing == "auto"
