"""The tuning comparison: each variant's medians and its per-round ratio to the default."""

from benchmark import tuning
from benchmark.plan import tuning_variants

LABELS = [label for label, *_ in tuning.WORKLOADS]


def measured_rounds(rps_per_round, p99=10.0):
    return {label: [{"rps": rps, "p99_ms": p99} for rps in rps_per_round] for label in LABELS}


def test_the_ratio_to_the_default_is_the_median_of_each_rounds_ratio():
    measured = {"default": measured_rounds([1000, 500, 1000]), "variant": measured_rounds([1100, 450, 900], p99=20)}
    summary = tuning.summarize(measured, "default")
    cell = summary["variant"][LABELS[0]]
    # Rounds: 1.10, 0.90, 0.90.
    assert round(cell["vs_default"], 2) == 0.90
    assert cell["rps"] == 900 and cell["p99_ms"] == 20
    assert summary["default"][LABELS[0]]["vs_default"] == 1.0


def test_the_table_has_a_row_per_variant_and_a_column_per_workload():
    measured = {"default": measured_rounds([1000]), "variant": measured_rounds([1100])}
    text = tuning.render(tuning.summarize(measured, "default"), rounds=1, duration=3)
    assert "| variant | " + " | ".join(LABELS) + " |" in text
    assert "| variant | 1,100 · 10 ms · 1.10 |" in text


def test_the_default_comes_first_and_every_variant_differs_from_it():
    variants = tuning_variants(cpus=2)
    assert variants[0].default and variants[0].env == {} and variants[0].nginx_env == {}
    assert all(variant.env or variant.nginx_env for variant in variants[1:])
    assert len({variant.name for variant in variants}) == len(variants)
