"""The cold-start section of docs/BENCHMARKS.md: what it says of the parts of a handler's import."""

from __future__ import annotations

from sagatools.bench_cold_start import LIBRARY_LAYERS, ColdStart, cold_start_markdown, handler_layers


def _measured(libraries_ms: list[float], handler_ms: float) -> ColdStart:
    return ColdStart(
        python="3.11",
        libraries=[(layer.name, ms) for layer, ms in zip(LIBRARY_LAYERS, libraries_ms, strict=True)],
        handlers=[(layer.name, handler_ms) for layer in handler_layers()],
    )


def _summary(measured: ColdStart) -> str:
    return next(line for line in cold_start_markdown(measured) if line.startswith("A handler imports"))


def test_each_part_of_a_handlers_import_is_its_step_along_the_layers():
    summary = _summary(_measured([100, 110, 160, 180, 130, 180], 200))
    assert "Of the 100 ms above boto3: Logger and Metrics 10 ms, pydantic with the Parser 50 ms" in summary
    assert "the Tracer 20 ms, our own modules 20 ms" in summary


def test_a_part_a_noisy_run_puts_below_zero_is_said_to_be_within_the_noise():
    # The baseline's median came out above the next layer's: a difference of two medians, not a saving.
    summary = _summary(_measured([164, 152, 213, 255, 172, 249], 265))
    assert "Logger and Metrics under 1 ms (within the noise)" in summary
    assert " -" not in summary
