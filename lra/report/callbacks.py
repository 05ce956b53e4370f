"""Hydra callbacks that end a sweep with its table.

``conf/sweep/lr_search.yaml`` installs :class:`SelectionTable`: when the multirun ends, it prints
the ``select=val`` leaderboard of the sweep's results folder (the configuration with the best
mean val accuracy per task and method, and its test accuracy), i.e. what
``lra-report select=val`` writes.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SelectionTable(Callback):
    """At the end of a multirun: print the tables selected on validation."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(selection_markdown(str(config.results_dir)))


def selection_markdown(results_dir: str) -> str:
    """The ``select=val`` tables of ``results_dir`` as Markdown (a line when there are none)."""
    from lra.report.cli import load_runs, protocol_notes
    from lra.report.formats import leaderboard_table, markdown
    from lra.report.tables import LRA_TASKS, selected_frame

    runs = load_runs(results_dir)
    wide = selected_frame(runs, list(LRA_TASKS))
    if wide.empty:
        return f"no records under {results_dir}/runs to select from"
    parts = []
    for protocol, rows in wide.groupby("protocol", sort=True):
        tasks = [t for t in LRA_TASKS if (rows[f"{t}_state"] != "missing").any()]
        table = leaderboard_table(protocol, rows, None, tasks)
        notes = "".join(f"\n{n}\n" for n in protocol_notes(protocol, runs))
        parts.append(f"## protocol: {protocol}\n\n{markdown(table)}\n{notes}")
    return "\n".join(parts)
