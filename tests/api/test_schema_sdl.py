"""schema.graphql is the exported contract: it must match the code."""

from __future__ import annotations

from gateway.web.schema_export import SCHEMA_FILE, main, sdl


def test_exported_schema_is_current():
    assert SCHEMA_FILE.exists(), "run: python -m gateway.web.schema_export"
    assert SCHEMA_FILE.read_text() == sdl(), (
        "schema.graphql is stale: run python -m gateway.web.schema_export"
    )


def test_check_mode_detects_a_stale_file(tmp_path):
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { old: Int }\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert main(["--output", str(stale)]) == 0
    assert stale.read_text() == sdl()
    assert main(["--check", "--output", str(stale)]) == 0


def test_public_names_are_in_the_schema():
    text = sdl()
    for name in (
        "enum Device",
        "enum Sex",
        "enum Interval",
        "enum StepOrder",
        "enum Breakdown",
        "input FunnelFilter",
        "type User ",
        "type Session ",
        "type Journey ",
        "type SimilarUser ",
        "type Funnel ",
        "type FunnelStep ",
        "type FunnelTrendPoint ",
        "type Dashboard ",
        "type PathCount ",
        "type Sentiment ",
        "type PageVisit ",
        "type Interaction ",
        "funnelTrend(",
        "droppedOff(",
        "converted(",
        "similarUsers(",
        "topPaths(",
        "sentiment(",
        "conversionLikelihood",
        "medianTimeToConvert",
        "hasNextPage",
        "totalCount",
    ):
        assert name in text, name
