"""The markdown table of ``gpu_check.py``'s report (one table per section), kept apart from the
checks."""

from __future__ import annotations

import netbench


def markdown(report: dict) -> str:
    """One markdown table per section."""
    m = report["machine"]
    lines = [
        f"# GPU check: {report['device']}",
        "",
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, Python {m['python']}; config "
        f"`{report['config']}` (input {report['input_size']} px), seeded weights, synthetic SMPL; "
        f"budget {report['budget_s']} s, used {report.get('wall_s')} s. Load average before "
        f"{report['load_average_before']}, after {report.get('load_average_after')}.",
    ]
    sections = report["sections"]
    par = sections.get("parity", {})
    if "variants" in par:
        lines += [
            "",
            "## Parity",
            "",
            "| variant | reference | worst head max abs | worst vertex mm | SAT flips "
            "(3 unforced frames) | tolerance heads / mm | pass |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for label, entry in par["variants"].items():
            if "skipped" in entry:
                lines.append(f"| {label} | skipped: {entry['skipped']} | | | | | |")
                continue
            s, tol = entry["summary"], par["tolerances"][label.split()[-1]]
            lines.append(
                f"| {label} | {entry['reference']} | {s['worst_heads']:.1e} | "
                f"{s['worst_vertices_mm']:.3f} | {s['sat_flips']} | {tol['heads']:g} / "
                f"{tol['vertices_mm']:g} | {s['pass']} |"
            )
    for name in ("speed", "cuda_graphs", "compile"):
        rows = sections.get(name, {}).get("rows", [])
        timed = [r for r in rows if "p50_ms" in r and r.get("variant") != "host"]
        if timed:
            stages = netbench.stage_columns(timed)
            lines += [
                "",
                f"## {name}",
                "",
                "| scene | tokens | variant | total p50 / p90 ms | speed-up | peak MiB | "
                "first call s | " + " | ".join(stages) + " |",
                "|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(stages),
            ]
            for r in timed:
                cells = [
                    f"{r['stages'][k]['p50_ms']:.2f}" if k in r.get("stages", {}) else "–"
                    for k in stages
                ]
                lines.append(
                    f"| {r['scene']} | {r['tokens']} | {r['variant']} | "
                    f"{r['p50_ms']:.2f} / {r['p90_ms']:.2f} "
                    f"| {r['speedup_vs_eager_fp32']:.2f}x | {r.get('peak_memory_mib', '–')} | "
                    f"{r.get('first_call_s', '–')} | " + " | ".join(cells) + " |"
                )
        host = [r for r in rows if r.get("variant") == "host"]
        if host:
            keys = [k for k in host[0] if isinstance(host[0][k], dict)]
            lines += [
                "",
                "| people | " + " | ".join(f"{k} p50 / p90 ms" for k in keys) + " |",
                "|---:|" + "---:|" * len(keys),
            ]
            lines += [
                "| "
                + r["scene"]
                + " | "
                + " | ".join(f"{r[k]['p50_ms']:.2f} / {r[k]['p90_ms']:.2f}" for k in keys)
                + " |"
                for r in host
            ]
    e2e = sections.get("end_to_end", {})
    if "p50_ms" in e2e:
        lines += [
            "",
            "## End to end (`Pipeline.process`)",
            "",
            f"{e2e['backend']}, {e2e['people_forced']} people forced "
            f"({e2e['people_returned_mean']:.1f} returned), {e2e['dto']}: p50 {e2e['p50_ms']:.1f} "
            f"ms, p90 {e2e['p90_ms']:.1f} ms, {e2e['fps']:.1f} FPS over {e2e['iters']} frames.",
            "",
            "| stage | p50 ms | p90 ms |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {k} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} |" for k, v in e2e["stages"].items()
        ]
    notes = [f"- {name}: {value}" for name, value in report["skipped"].items()]
    for name in ("speed", "cuda_graphs", "compile"):
        for label, why in (
            (sections.get(name, {}).get("skipped") or {}).items()
            if isinstance(sections.get(name, {}).get("skipped"), dict)
            else []
        ):
            notes.append(f"- {name} / {label}: {why}")
        if isinstance(sections.get(name, {}).get("skipped"), str):
            notes.append(f"- {name}: {sections[name]['skipped']}")
    if notes:
        lines += ["", "## Skipped", ""] + notes
    return "\n".join(lines) + "\n"
