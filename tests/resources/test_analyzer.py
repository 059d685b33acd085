"""Profiles and predictions from materializations recorded on a real (ephemeral or on-disk) Dagster instance."""

import argparse
import statistics
from pathlib import Path

import dagster as dg
import pytest

from resources.analyzer import (
    HISTORY_CACHE,
    MAX_MB_PER_1K_ROWS,
    MEMORY_FLOOR_MB,
    MIN_PROFILE_ROWS,
    OpProfile,
    Prediction,
    ResourceUsageAnalyzer,
    StepRecord,
    add_profile_cli,
    discover_op_assets,
    op_name_of,
)

# Per partition: rows_in, rows_out, seconds, peak_rss_mb, cpu_seconds, rss_delta_mb.
STEPS = {
    "a": (1000, 900, 2.0, 100.0, 1.5, 20.0),
    "b": (2000, 1500, 3.0, 300.0, 5.0, 60.0),
}
KEY = dg.AssetKey(["demo", "op02_text_length_filter"])


@dg.asset(
    key=KEY,
    partitions_def=dg.StaticPartitionsDefinition(sorted(STEPS)),
    metadata={"sluice/op": "text_length_filter"},
)
def op_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    rows_in, rows_out, seconds, rss, cpu, delta = STEPS[context.partition_key]
    return dg.MaterializeResult(
        metadata={
            "rows_in": rows_in,
            "rows_out": rows_out,
            "seconds": seconds,
            "peak_rss_mb": rss,
            "cpu_seconds": cpu,
            "rss_delta_mb": delta,
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


_MEDIAN_DELTA_PER_1K = statistics.median(step[5] / step[0] * 1000 for step in STEPS.values())


def test_prediction_is_mean_times_margin(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, margin=1.2, ops={"text_length_filter": [KEY]})
    rows = 4000
    expected = Prediction(
        memory_mb=_MEDIAN_DELTA_PER_1K * (rows / 1000) * 1.2,
        cpu_seconds=_mean_per_1k(4) * (rows / 1000) * 1.2,
        seconds=_mean_per_1k(2) * (rows / 1000) * 1.2,
    )
    assert analyzer.predict("text_length_filter", rows) == expected
    # the same figures by hand: added MB/1k rows 20 and 30, CPU s/1k 1.5 and 2.5, s/1k 2.0 and 1.5
    assert expected.memory_mb == pytest.approx(25 * 4 * 1.2)
    assert expected.cpu_seconds == pytest.approx(2.0 * 4 * 1.2)
    assert expected.seconds == pytest.approx(1.75 * 4 * 1.2)


def test_memory_predictions_for_the_planner(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, margin=1.2, ops={"text_length_filter": [KEY]})
    expected_mb = analyzer.predict("text_length_filter", 3000).memory_mb  # type: ignore[union-attr]
    assert expected_mb is not None
    assert analyzer.memory_gb_predictions(3000) == {"text_length_filter": expected_mb / 1024}


def test_profile_figures(instance: dg.DagsterInstance) -> None:
    profile = ResourceUsageAnalyzer(instance, ops={"text_length_filter": [KEY]}).profile("text_length_filter")
    assert profile == OpProfile(
        op="text_length_filter",
        samples=2,
        rows=3000,
        memory_mb_per_1k_rows=_MEDIAN_DELTA_PER_1K,
        cpu_seconds_per_1k_rows=_mean_per_1k(4),
        seconds_per_1k_rows=_mean_per_1k(2),
        rows_per_s=3000 / 5.0,
        peak_rss_mb_mean=200.0,
        memory_samples=2,
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
        memory_mb=_MEDIAN_DELTA_PER_1K * 2.0, cpu_seconds=_mean_per_1k(4) * 2.0, seconds=_mean_per_1k(2) * 2.0
    )
    assert op_name_of(dg.AssetKey(["r", "op12_words_num_filter"])) == "words_num_filter"
    assert op_name_of(dg.AssetKey(["r", "source"])) == "source"


def test_render_profiles(instance: dg.DagsterInstance) -> None:
    analyzer = ResourceUsageAnalyzer(instance, ops={"text_length_filter": [KEY]})
    table = analyzer.render_profiles()
    assert table.splitlines()[0].split()[:3] == ["op", "steps", "rows"]
    assert table.splitlines()[1].split() == ["text_length_filter", "2", "3000", "25.00", "2.0000", "600", "200.0"]
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


# --- issue 11 item 6: history from small shards must not predict absurd memory -------------------------------


def _step(rows: int, peak_rss_mb: float, rss_delta_mb: float | None = None, seconds: float = 0.01) -> StepRecord:
    return StepRecord(
        asset_key=KEY,
        partition="p",
        run_id="r",
        timestamp=0.0,
        rows_in=rows,
        rows_out=rows,
        seconds=seconds,
        peak_rss_mb=peak_rss_mb,
        cpu_seconds=seconds,
        rss_delta_mb=rss_delta_mb,
    )


def test_a_five_row_step_predicts_no_memory() -> None:
    """The reproducer: one run of a 5-row input (process RSS ~250 MB) predicted 49.85 GB for a 10k-row shard."""
    profile = OpProfile.from_steps("text_length_filter", [_step(5, peak_rss_mb=250.0, rss_delta_mb=0.4)])
    assert profile.memory_mb_per_1k_rows is None
    assert profile.predict(10_000, 1.2).memory_mb is None
    assert profile.cpu_seconds_per_1k_rows == pytest.approx(2.0)  # informational figures still come from it


def test_memory_comes_from_the_rss_a_step_added_not_the_process_rss() -> None:
    steps = [_step(10_000, peak_rss_mb=274.0, rss_delta_mb=12.0), _step(10_000, peak_rss_mb=280.0, rss_delta_mb=14.0)]
    profile = OpProfile.from_steps("op", steps)
    assert profile.memory_mb_per_1k_rows == pytest.approx(1.3)  # median of 1.2 and 1.4
    # the demo at partition.size 50000: ~78 MB, where process RSS per row predicted ~24 GB
    assert profile.predict(50_000, 1.2).memory_mb == pytest.approx(1.3 * 50 * 1.2)


def test_small_steps_and_steps_without_rss_delta_are_left_out_of_the_memory_rate() -> None:
    steps = [
        _step(MIN_PROFILE_ROWS - 1, peak_rss_mb=300.0, rss_delta_mb=200.0),  # fixed costs of a tiny shard
        _step(5_000, peak_rss_mb=300.0),  # recorded before rss_delta_mb existed
        _step(4_000, peak_rss_mb=300.0, rss_delta_mb=8.0),
    ]
    profile = OpProfile.from_steps("op", steps)
    assert (profile.memory_mb_per_1k_rows, profile.memory_samples) == (2.0, 1)


def test_memory_rate_median_ignores_one_model_load_and_is_capped() -> None:
    steps = [_step(1_000, 300.0, 900.0), _step(1_000, 300.0, 4.0), _step(1_000, 300.0, 6.0)]
    assert OpProfile.from_steps("op", steps).memory_mb_per_1k_rows == 6.0
    huge = OpProfile.from_steps("op", [_step(1_000, 9_000.0, 8_000.0)])
    assert huge.memory_mb_per_1k_rows == MAX_MB_PER_1K_ROWS


def test_memory_prediction_has_a_floor() -> None:
    profile = OpProfile.from_steps("op", [_step(10_000, 250.0, 0.0)])
    assert profile.predict(10, 1.2).memory_mb == MEMORY_FLOOR_MB


# --- the on-disk cache of records already read ----------------------------------------------------------------


def _counting(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The records each `fetch_materializations` call of `instance` returned (each one deserialized)."""
    calls: list[int] = []
    fetch = instance.fetch_materializations

    def counted(*args, **kwargs):
        result = fetch(*args, **kwargs)
        calls.append(len(result.records))
        return result

    monkeypatch.setattr(instance, "fetch_materializations", counted)
    return calls


def test_history_already_read_comes_from_the_cache_and_only_new_materializations_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        _record_history(instance)
        first = ResourceUsageAnalyzer(instance).steps([KEY])
        assert (tmp_path / HISTORY_CACHE).exists()
        assert sorted(s.partition for s in first) == ["a", "b"]

        calls = _counting(instance, monkeypatch)
        again = ResourceUsageAnalyzer(instance).steps([KEY])
        assert again == first and calls == [0, 1]  # nothing new; the newest one read is still there

        assert dg.materialize([op_asset], instance=instance, partition_key="b").success
        third = ResourceUsageAnalyzer(instance).steps([KEY])
        assert calls == [0, 1, 1]  # then the new materialization only
        monkeypatch.undo()
        (tmp_path / HISTORY_CACHE).unlink()
        assert third == ResourceUsageAnalyzer(instance).steps([KEY])  # the same as reading everything
        assert [s.partition for s in third] == ["b", "b", "a"]  # newest first


def test_the_cache_keeps_history_records_per_asset_and_forgets_a_wiped_asset(tmp_path: Path) -> None:
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        _record_history(instance)
        assert dg.materialize([op_asset], instance=instance, partition_key="a").success
        newest_two = ResourceUsageAnalyzer(instance, history=2).steps([KEY])
        assert [s.partition for s in newest_two] == ["a", "b"]
        assert ResourceUsageAnalyzer(instance, history=2).steps([KEY]) == newest_two  # from the cache

        instance.wipe_assets([KEY])
        assert ResourceUsageAnalyzer(instance, history=2).steps([KEY]) == []  # read again, not the cached steps
