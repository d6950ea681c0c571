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


def test_the_default_comes_first_and_every_variant_but_the_control_differs_from_it():
    variants = tuning_variants(cpus=2)
    assert variants[0].default and variants[0].env == {} and variants[0].nginx_env == {}
    control, *changed = variants[1:]
    assert "A/A control" in control.name and not control.default
    assert control.env == {} and control.nginx_env == {}
    assert all(variant.env or variant.nginx_env for variant in changed)
    assert len({variant.name for variant in variants}) == len(variants)


def test_the_variants_can_be_narrowed_by_words_of_their_names_and_the_default_always_runs():
    variants = tuning_variants(cpus=2, chosen=("turns", "METRICS"))
    assert [variant.name for variant in variants[1:]] == [
        "default, but APP_METRICS=off",
        "default, but GUNICORN_CONNECTION_TURNS=off",
    ]
    assert variants[0].default


def open_loop_rounds(p99s, errors=0, kept_up=True):
    return [
        {"rps": 2000.0, "p99_ms": p99, "p999_ms": p99 * 2, "errors": errors, "generator_kept_up": kept_up}
        for p99 in p99s
    ]


def test_open_loop_cells_are_medians_of_the_latency_with_every_rounds_errors_and_lateness_counted():
    label = tuning.OPEN_LOOP_WORKLOADS[0][0]
    measured = {
        "default": {label: open_loop_rounds([150, 900, 160])},
        "variant": {label: open_loop_rounds([120, 130, 500], errors=2, kept_up=False)},
    }
    summary = tuning.summarize(measured, "default")
    assert summary["default"][label] | {"vs_default": None} == {
        "rps": 2000.0,
        "p99_ms": 160,
        "p999_ms": 320,
        "errors": 0,
        "generator_behind": 0,
        "vs_default": None,
    }
    assert summary["variant"][label]["errors"] == 6 and summary["variant"][label]["generator_behind"] == 3
    ceiling = {"ceiling_rps": 2500.0, "runs": [{"rate_rps": 2500.0, "served": True, "reasons": []}]}
    text = tuning.render(summary, rounds=3, duration=3, open_loop_ceiling=ceiling)
    assert "| variant | 130 · 260 ms · 6 (generator behind in 3) |" in text
    assert "| default | 160 · 320 ms · 0 |" in text
    assert "open-loop ceiling: 2,500 requests/s" in text
