"""Print benchmark rows the same way everywhere: a Markdown table with the ratio and its target."""

from __future__ import annotations

import datetime
import os
import platform


def header(title: str) -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"## {title}\n\n{datetime.date.today().isoformat()}, {os.cpu_count()} cores, {cpu}, "
        f"Python {platform.python_version()}\n"
    )


def table(rows: list[dict]) -> str:
    """rows: dicts with name, value, unit, and optionally baseline, baseline_name, ratio, target."""
    lines = [
        "| measure | value | baseline | ratio | target | ok |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        value = f"{r['value']:,.1f} {r.get('unit', '')}".strip()
        base = r.get("baseline")
        base_s = f"{base:,.1f} ({r.get('baseline_name', 'reference')})" if base is not None else ""
        ratio = r.get("ratio")
        ratio_s = f"{ratio:.2f}x" if ratio is not None else ""
        target = r.get("target")
        target_s = f">= {target}x" if target is not None else ""
        ok = "" if target is None or ratio is None else ("yes" if ratio >= target else "NO")
        lines.append(f"| {r['name']} | {value} | {base_s} | {ratio_s} | {target_s} | {ok} |")
    return "\n".join(lines)
