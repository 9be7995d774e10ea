"""One self-contained HTML page per execution: the graph the Step Functions console draws, coloured by
what happened, beside the event history, the records and the saga log.

Reads only the ASL and `GetExecutionHistory` output (plus the runner's report of the tables), so the
same page comes out for an embedded and a deployed execution. No network: inline SVG and CSS.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saga.keys import RECORDS_KEY
from saga.saga_log import AttentionState
from sagatools.history import as_datetime, normalise
from sagatools.view.graph import COLOURS, graph_svg, state_views
from sagatools.view.recovery import attention_line, disagreement_line, forward_summary

if TYPE_CHECKING:
    from sagatools.results import SagaResult


def _event_rows(events: list[dict[str, Any]]) -> str:
    rows: list[str] = []
    state, previous = "", None
    for event in events:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        if event["type"].endswith("StateEntered"):
            state = details.get("name", "")
        took = f"{(event['timestamp'] - previous).total_seconds() * 1000:.0f} ms" if previous else ""
        previous = event["timestamp"]
        problem = " ".join(str(details[key]) for key in ("error", "cause") if details.get(key))
        css = ' class="problem"' if problem else ""
        rows.append(
            f"<tr{css}><td>{event['id']}</td><td>{html.escape(event['type'])}</td><td>{html.escape(state)}</td>"
            f"<td>{event['timestamp'].strftime('%H:%M:%S.%f')[:-3]}</td><td>{took}</td>"
            f'<td class="cause">{html.escape(problem[:400])}</td></tr>'
        )
    return "\n".join(rows)


STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#263238}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.banner{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600;color:#fff}
.COMMITTED,.RESOLVED{background:#2e7d32}.ROLLED_BACK{background:#ef6c00}.NEEDS_ATTENTION{background:#c62828}
.UNFINISHED{background:#1565c0}
.graph text{font-size:13px;text-anchor:middle}.graph .name{font-weight:600;fill:#263238}
.graph .status{font-size:11px}
.edge{stroke:#b0bec5;stroke-width:1.5}.edge.error{stroke-dasharray:5 4}
.edge.taken{stroke:#37474f;stroke-width:3}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border:2px solid;border-radius:3px;vertical-align:-2px;
margin-right:4px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #cfd8dc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#eceff1}tr.problem td{background:#fff5f5}td.cause{max-width:620px;
word-break:break-word}.meta td:first-child{font-weight:600}
"""


def page_html(definition: dict[str, Any], events: list[dict[str, Any]], report: SagaResult, what: str = "Saga") -> str:
    """The page of one execution; `what` it was heads it (a saga, or an operator's resolution of one)."""
    events = normalise(events)
    views = state_views(definition, events)
    outcome = report.outcome.value if report.outcome else "UNFINISHED"
    legend = "".join(
        f'<span><i style="border-color:{stroke};background:{fill}"></i>{shown.value.replace("-", " ")}</span>'
        for shown, (stroke, fill) in COLOURS.items()
    )
    disagreeing, problem = report.provider_disagreements(), ' class="problem"'
    records = "".join(
        f"<tr{problem if resource in disagreeing else ''}><td>{resource}</td>"
        f"<td>{status.value if status else '-'}</td><td>{_at_provider(report, resource)}</td></tr>"
        for resource, status in report.records.items()
    )
    disagreement = disagreement_line(report)
    disagreement_html = f"<p><b>Disagreement:</b> {html.escape(disagreement)}</p>" if disagreement else ""
    log_rows = "".join(
        f"<tr><td>{html.escape(e.at)}</td><td>{e.step}</td><td>{e.event}</td><td>{e.attempt}</td>"
        f"<td>{html.escape(e.provider or '')}</td><td>{html.escape(e.detail or '')}</td></tr>"
        for e in report.saga_log
    )
    attention = "".join(
        f"<p><b>Needs attention:</b> {html.escape(attention_line(r))}</p>"
        if r.attention is AttentionState.OPEN
        else f"<p><b>Resolved:</b> {html.escape(attention_line(r))}, closed {html.escape(r.resolved_at or '')}</p>"
        for r in report.needs_attention
    )
    forward = forward_summary(report)
    recovery = f"<tr><td>recovery</td><td>{html.escape(forward)}</td></tr>" if forward else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{what} {html.escape(report.saga_id)}: {outcome}</title>
<style>{STYLE}</style></head>
<body data-outcome="{outcome}" data-status="{report.status}">
<h1>{what} {html.escape(report.saga_id)} <span class="banner {outcome}">{outcome}</span></h1>
<table class="meta">
<tr><td>execution</td><td>{html.escape(report.execution_arn)}</td></tr>
<tr><td>status</td><td>{report.status}{" - " + html.escape(report.error) if report.error else ""}</td></tr>
<tr><td>cause</td><td>{html.escape(report.cause or "")}</td></tr>
<tr><td>path</td><td>{" &rarr; ".join(html.escape(s) for s in report.states)}</td></tr>
{_cost_row(report)}
<tr><td>duration</td><td>{f"{report.duration_ms} ms" if report.duration_ms is not None else "still running"}</td></tr>
{recovery}
</table>
{attention}
<h2>State machine</h2>
<div class="legend">{legend}</div>
{graph_svg(definition, views, report.states)}
<h2>{RECORDS_KEY.capitalize()}</h2>
<table><tr><th>resource</th><th>status</th><th>at its provider</th></tr>{records}</table>
{disagreement_html}
<h2>Saga log</h2>
<table><tr><th>at</th><th>step</th><th>event</th><th>attempt</th><th>provider</th><th>detail</th></tr>{log_rows}</table>
<h2>Event history</h2>
<table class="events"><tr><th>#</th><th>type</th><th>state</th><th>time</th><th>since previous</th>
<th>error / cause</th></tr>
{_event_rows(events)}
</table>
</body></html>
"""


def _cost_row(report: SagaResult) -> str:
    """What the coordinator bills: the state machine's transitions, or the durable function's operations."""
    if report.durable_operations is not None:
        return f"<tr><td>durable operations</td><td>{report.durable_operations}</td></tr>"
    return (
        f"<tr><td>transitions</td><td>{report.transitions} states entered, {report.billed_transitions} billed</td></tr>"
    )


def _at_provider(report: SagaResult, resource: str) -> str:
    """The step's reservation at its provider, as the provider's own ledger has it."""
    status = report.providers.get(resource)
    return status.value if status else "-"


def page_path(directory: Path, name: str, what: str = "Saga") -> Path:
    """Where the page of the execution `name` goes: a saga's is <saga_id>.html, a resolution's is in a folder
    of its own, resolutions/<saga_id>-resolve-<n>.html. A saga id holds no '/', so whatever it is (even
    X-resolve-1) its page never takes the name of another saga's resolution."""
    return directory / f"{name}.html" if what == "Saga" else directory / f"{what.lower()}s" / f"{name}.html"


def write_page(
    directory: Path, definition: dict[str, Any], events: list[dict[str, Any]], report: SagaResult, what: str = "Saga"
) -> Path:
    """The page (see `page_path`), written to a new file and renamed into place: a link planted where the
    page goes is replaced, never followed."""
    path = page_path(directory, report.saga_id, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{report.saga_id}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as page:
            page.write(page_html(definition, events, report, what))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def history_json(events: list[dict[str, Any]]) -> str:
    """A history as JSON (timestamps as ISO strings), the form the renderer's tests load back."""
    return json.dumps([{**e, "timestamp": as_datetime(e["timestamp"]).isoformat()} for e in events], indent=1)
