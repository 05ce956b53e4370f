"""``lra-check``: is an attention class fit to train? The conformance checks on one method, and
its time and memory from 1K to 8K tokens beside full attention.

    lra-check linformer                                  # a registered method
    lra-check my_pkg.attn:MyAttention window=64          # any class, options as key=value
    lra-check sigmoid --skip compile,curve               # an installed entry point, quickly
    lra-check model=external model.target=my_pkg.attn:MyAttention model.window=64

Prints one line per check as it finishes, then a table (check, result, measured, expected)
and, for each failure, what was measured and what was expected. Writes under ``--out``
(default ``$LRA_RESULTS_DIR/check`` or ``outputs/results/check``): ``<method>_checks.csv``
(the table) and for the curve ``<method>_curve.csv`` (tidy ``lra-bench`` rows: one attention
layer of the Text recipe, forward and backward, batch 1, the method and ``transformer`` in one
invocation) with ``<method>_curve_time.png`` and ``<method>_curve_memory.png``.

Options given on the command line replace the class's ``test_options`` and recipe options of
the same name in every check. Exit status: 0 when every check passes, 1 when one fails, 2 for
a method that cannot be used (one line naming it and what is wrong).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CURVE = "curve"  # the time/memory curve, selectable like a check
REFERENCE = "transformer"
LENGTHS = (1024, 2048, 4096, 8192)


class UsageError(ValueError):
    """A method or option that cannot be used; one line."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lra-check",
        description="Conformance checks and a 1K-8K time/memory curve for one attention method.",
    )
    parser.add_argument(
        "method",
        nargs="+",
        help="a registered name, an installed entry point, or package.module:ClassName; then "
        "options as key=value (model=... and model.key=value are read the same way)",
    )
    parser.add_argument("--skip", default="", help="comma-separated checks to skip (or 'curve')")
    parser.add_argument("--only", default="", help="comma-separated checks to run (or 'curve')")
    parser.add_argument(
        "--lengths",
        default=",".join(map(str, LENGTHS)),
        help="curve lengths (default %(default)s)",
    )
    parser.add_argument("--device", default="auto", help="curve device: auto, cpu, cuda")
    parser.add_argument("--out", default=None, help="output folder (default <results>/check)")
    return parser.parse_args(argv)


def method_and_options(words: list[str]) -> tuple[str, dict[str, Any]]:
    """``["linformer", "k=8"]`` or ``["model=external", "model.target=a:B", "model.k=8"]`` ->
    the method and its options (values read as YAML: ``8`` is an int, ``log_n`` a string)."""
    from lra.method_configs import split_model_args

    rest, method, options = split_model_args(words)
    for word in rest:
        key, sep, value = word.partition("=")
        if sep:
            options[key] = yaml.safe_load(value) if value else None
        elif method is not None:
            raise UsageError(f"two methods given ({method!r}, {word!r}); check one at a time")
        else:
            method = word
    if method is None:
        raise UsageError("no method given: lra-check <name | package.module:ClassName> [key=value]")
    return method, options


def resolve(method: str, options: dict[str, Any]) -> type:
    """The attention class of ``method``, its options checked against its constructor."""
    import models
    from models.base import option_defaults

    try:
        cls = models.attention_class(method)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None
    except ValueError as err:  # models.external.MethodError
        raise UsageError(str(err)) from None
    unknown = sorted(set(options) - set(models.accepted_options(cls)))
    if unknown:
        raise UsageError(
            f"{method}: option(s) {unknown} not accepted; accepted: {models.accepted_options(cls)}"
        )
    required = [
        key
        for key, default in option_defaults(cls).items()
        if default is inspect.Parameter.empty and key not in options and key != "max_len"
    ]
    if required:
        raise UsageError(f"{method}: option(s) {required} have no default; give {required[0]}=...")
    return cls


def selected(names: list[str], only: str, skip: str) -> list[str]:
    """The checks (and ``curve``) to run, in order."""
    wanted = [n for n in only.split(",") if n] or names
    dropped = {n for n in skip.split(",") if n}
    unknown = sorted((set(wanted) | dropped) - set(names))
    if unknown:
        raise UsageError(f"unknown check(s) {unknown}; checks: {', '.join(names)}")
    return [n for n in names if n in wanted and n not in dropped]


def short(value: Any) -> str:
    """A measured value as text (the table cuts long ones; the CSV keeps them whole)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "none"
    return "—" if value is None else str(value)


def table(rows: list[dict[str, str]], width: int = 64) -> str:
    """A plain-text table of the results, columns padded, cells cut at ``width``."""
    columns = ["check", "result", "measured", "expected"]
    rows = [
        {c: r[c] if len(r[c]) <= width else r[c][: width - 1] + "…" for c in columns} for r in rows
    ]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def slug(method: str) -> str:
    """A file stem for ``method``: ``my_pkg.attn:MyAttention`` -> ``my_pkg.attn-MyAttention``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", method).strip("-")


def default_out() -> Path:
    """``check`` under the runs' default ``results_dir`` (``conf/train.yaml``)."""
    from lra.config import default_results_dir

    return default_results_dir() / "check"


def run_curve(
    method: str, options: dict[str, Any], lengths: list[int], device: str, out: Path
) -> tuple[dict[str, str], list[Path]]:
    """Time and peak memory of one attention layer (Text recipe, batch 1, forward + backward)
    of ``method`` and ``transformer`` at ``lengths``, one ``lra-bench`` invocation; the table
    row and the files written."""
    from lra.bench.cli import run, with_model
    from lra.config import compose
    from lra.report.plots import loglog_slope, save_scaling_figures

    stem = f"{slug(method)}_curve"
    cfg = compose(
        "bench",
        [
            f"methods=[{REFERENCE}]",
            f"lengths=[{','.join(map(str, lengths))}]",
            "batch_sizes=[1]",
            "mode=attention",
            "warmup=1",
            "repeats=3",
            f"device={device}",
            f"references=[{REFERENCE}]",
            f"out_dir={out}",
            f"out={stem}",
            "progress=false",
        ],
    )
    csv_path = out / f"{stem}.csv"
    csv_path.unlink(missing_ok=True)  # one invocation per file: the curve of this check only
    rows, _ = run(with_model(cfg, method, options, listed=True))
    files = [csv_path, *save_scaling_figures(rows, out, stem, f"lra-check {method}")]
    ok = rows[(rows["method"] == method) & (rows["status"] == "ok")]
    ref = rows[(rows["method"] == REFERENCE) & (rows["status"] == "ok")]
    bad = rows[(rows["method"] == method) & (rows["status"] != "ok")]
    measured: dict[str, str] = {}
    for column, label in (("step_ms", "time"), ("peak_mb", "memory")):
        slope = loglog_slope(ok["length"].to_numpy(), ok[column].to_numpy())
        measured[f"{label} slope"] = "—" if slope is None else f"{slope:.2f}"
    longest = max(lengths)
    mine, theirs = ok[ok["length"] == longest], ref[ref["length"] == longest]
    if not mine.empty and not theirs.empty and method != REFERENCE:
        for column, label in (("step_ms", "time"), ("peak_mb", "memory")):
            ratio = float(mine[column].iloc[0]) / float(theirs[column].iloc[0])
            measured[f"{label} at {longest} vs {REFERENCE}"] = f"{ratio:.2f}x"
    message = "; ".join(f"{r.status} at {r.length}: {r.error}" for r in bad.itertuples())
    row = {
        "check": CURVE,
        "result": "PASS" if bad.empty else "FAIL",
        "measured": short(measured),
        "expected": f"every length {lengths[0]}..{longest} measured",
        "message": message,
    }
    return row, files


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``lra-check``; returns (and exits with) the status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        method, options = method_and_options(args.method)
        cls = resolve(method, options)
        from lra.check import CHECKS
        from lra.check.conformance import recipe_options

        names = selected([*CHECKS, CURVE], args.only, args.skip)
        lengths = [int(n) for n in args.lengths.split(",") if n]
        if not lengths or min(lengths) < 1:
            raise UsageError(f"--lengths must be positive integers, got {args.lengths!r}")
    except (UsageError, ValueError) as err:
        print(f"lra-check: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_out()
    out.mkdir(parents=True, exist_ok=True)
    test_opts, recipe_opts = dict(cls.test_options) | options, recipe_options(cls) | options
    print(f"lra-check {method} ({cls.__module__}:{cls.__qualname__}), options {options or '{}'}")
    rows: list[dict[str, str]] = []
    files: list[Path] = []
    for name in names:
        if name == CURVE:
            print(f"  {CURVE}: measuring {REFERENCE} and {method} at {lengths} ...", flush=True)
            try:
                row, written = run_curve(method, options, lengths, args.device, out)
                files += written
            except ValueError as err:  # lra.bench.cli.BenchError: a value the bench refuses
                row = {"check": CURVE, "result": "FAIL", "measured": "—", "message": str(err)}
                row["expected"] = "the method builds at the Text recipe"
        else:
            check = CHECKS[name]
            result = check(cls, recipe_opts if check.recipe else test_opts)
            status = "n/a" if not result.applicable else "PASS" if result.passed else "FAIL"
            row = {
                "check": name,
                "result": status,
                "measured": short(result.measured),
                "expected": result.expected,
                "message": result.message,
            }
        rows.append(row)
        print(f"  {row['check']}: {row['result']} {row['measured']}", flush=True)
    print()
    print(table(rows))
    failures = [r for r in rows if r["result"] == "FAIL"]
    for r in failures:
        print(f"FAIL {r['check']}: measured {r['measured']}; expected {r['expected']}", end="")
        print(f" ({r['message']})" if r["message"] else "")
    checks_csv = out / f"{slug(method)}_checks.csv"
    with open(checks_csv, "w", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["check", "result", "measured", "expected", "message"]
        )
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{len(failures)} of {len(rows)} fail; wrote {checks_csv}", end="")
    print("".join(f", {p}" for p in files))
    return 1 if failures else 0


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console()
