from __future__ import annotations

import pytest

from archiver.config import LISTING_CHOICES, Settings, settings_from_env
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


def test_the_listing_plan_is_chosen_by_name_and_every_name_is_a_plan() -> None:
    # GIVEN each name ARCHIVER_LISTING accepts
    for name in LISTING_CHOICES:
        # WHEN it is set
        settings = settings_from_env({"ARCHIVER_LISTING": name, "ARCHIVER_LISTING_MAX_KEYS": "5000"})
        # THEN the settings carry it, and the engine knows it as a plan
        assert settings.listing == name and settings.listing_max_keys == 5000
        assert ListingOptions.of(settings).choice == Listing(name)
    assert Settings().listing == "auto"
