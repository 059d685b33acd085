"""Profiles and predictions from materializations recorded on a real (ephemeral or on-disk) Dagster instance."""

import argparse
import statistics
from pathlib import Path

import dagster as dg
import pytest

from resources.analyzer import (
    OpProfile,
    Prediction,
    ResourceUsageAnalyzer,
    add_profile_cli,
    discover_op_assets,
    op_name_of,
)

# Per partition: rows_in, rows_out, seconds, peak_rss_mb, cpu_seconds.
STEPS = {
    "a": (1000, 900, 2.0, 100.0, 1.5),
    "b": (2000, 1500, 3.0, 300.0, 5.0),
}
KEY = dg.AssetKey(["demo", "op02_text_length_filter"])


@dg.asset(
    key=KEY,
    partitions_def=dg.StaticPartitionsDefinition(sorted(STEPS)),
    metadata={"sluice/op": "text_length_filter"},
)
def op_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    rows_in, rows_out, seconds, rss, cpu = STEPS[context.partition_key]
    return dg.MaterializeResult(
        metadata={
            "rows_in": rows_in,
            "rows_out": rows_out,
            "seconds": seconds,
            "peak_rss_mb": rss,
            "cpu_seconds": cpu,
            "dagster/row_count": rows_out,
        }
    )


@dg.asset(key=dg.AssetKey(["demo", "op03_document_deduplicator__hashes"]))
def not_a_step() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3, "seconds": 0.1})


def _record_history(instance: dg.DagsterInstance) -> None:
    for partition in STEPS:
        assert dg.materialize([op_asset], instance=instance, partition_key=partition).success
    assert dg.materialize([not_a_step], instance=instance).success


@pytest.fixture(scope="module")
def instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    _record_history(instance)
    return instance


def _mean_per_1k(index: int) -> float:
    return statistics.fmean(step[index] / step[0] * 1000 for step in STEPS.values())


def test_prediction_is_mean_times_margin(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, margin=1.2, ops={"text_length_filter": [KEY]})
    rows = 4000
    expected = Prediction(
        memory_mb=_mean_per_1k(3) * (rows / 1000) * 1.2,
        cpu_seconds=_mean_per_1k(4) * (rows / 1000) * 1.2,
        seconds=_mean_per_1k(2) * (rows / 1000) * 1.2,
    )
    assert analyzer.predict("text_length_filter", rows) == expected
    # the same figures by hand: MB/1k rows 100 and 150, CPU s/1k 1.5 and 2.5, s/1k 2.0 and 1.5
    assert expected.memory_mb == pytest.approx(125 * 4 * 1.2)
    assert expected.cpu_seconds == pytest.approx(2.0 * 4 * 1.2)
    assert expected.seconds == pytest.approx(1.75 * 4 * 1.2)


def test_memory_predictions_for_the_planner(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, margin=1.2, ops={"text_length_filter": [KEY]})
    expected_mb = analyzer.predict("text_length_filter", 3000).memory_mb  # type: ignore[union-attr]
    assert analyzer.memory_gb_predictions(3000) == {"text_length_filter": expected_mb / 1024}


def test_profile_figures(instance: dg.DagsterInstance) -> None:
    profile = ResourceUsageAnalyzer(instance, ops={"text_length_filter": [KEY]}).profile("text_length_filter")
    assert profile == OpProfile(
        op="text_length_filter",
        samples=2,
        rows=3000,
        memory_mb_per_1k_rows=_mean_per_1k(3),
        cpu_seconds_per_1k_rows=_mean_per_1k(4),
        seconds_per_1k_rows=_mean_per_1k(2),
        rows_per_s=3000 / 5.0,
        peak_rss_mb_mean=200.0,
    )


def test_no_history_means_no_prediction(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, ops={"text_length_filter": [KEY], "never_ran": [dg.AssetKey("x")]})
    assert analyzer.predict("never_ran", 1000) is None
    assert analyzer.predict("unknown_op", 1000) is None
    assert set(analyzer.profiles()) == {"text_length_filter"}


def test_discovery_groups_step_assets_by_op_name(instance: dg.DagsterInstance) -> None:
    assert discover_op_assets(instance) == {"text_length_filter": [KEY]}
    analyzer = ResourceUsageAnalyzer(instance, margin=2.0)
    assert analyzer.predict("text_length_filter", 1000) == Prediction(
        memory_mb=_mean_per_1k(3) * 2.0, cpu_seconds=_mean_per_1k(4) * 2.0, seconds=_mean_per_1k(2) * 2.0
    )
    assert op_name_of(dg.AssetKey(["r", "op12_words_num_filter"])) == "words_num_filter"
    assert op_name_of(dg.AssetKey(["r", "source"])) == "source"


def test_render_profiles(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, ops={"text_length_filter": [KEY]})
    table = analyzer.render_profiles()
    assert table.splitlines()[0].split()[:3] == ["op", "steps", "rows"]
    assert table.splitlines()[1].split() == ["text_length_filter", "2", "3000", "125.00", "2.0000", "600", "200.0"]
    assert "no recorded steps" in analyzer.render_profiles("other_op")


def test_profile_cli_reads_the_sluice_instance(sluice_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resources.settings import sluice_home as home

    home().ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        _record_history(instance)

    parser = argparse.ArgumentParser(prog="sluice")
    add_profile_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["profile"])
    assert args.fn(args) == 0
    assert "text_length_filter" in capsys.readouterr().out
    args = parser.parse_args(["profile", "text_length_filter", "--margin", "1.5"])
    assert args.fn(args) == 0
    assert "margin 1.5" in capsys.readouterr().out
    args = parser.parse_args(["profile", "nope"])
    assert args.fn(args) == 1
