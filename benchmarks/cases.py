"""The table the hostile-input scripts print: one row per case, ``case | expected | got | result``.

Used by ``python -m benchmarks.hostile_files`` and ``python -m benchmarks.hostile_serve``; each exits 1 when
any of its cases fails, so a reviewer can rerun them and see at a glance what holds.
"""

from __future__ import annotations

from typing import Any


class Cases:
    """Rows of hostile cases and their outcome."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool]] = []

    def check(self, case: str, expected: str, got: Any, ok: bool) -> None:
        """Record one case: what should happen, what did (cut to one short line), and whether it held."""
        self.rows.append((case, expected, str(got).replace("\n", " ")[:90], bool(ok)))

    def report(self) -> int:
        """Print the table and a count; return the exit status (1 when any case failed)."""
        widths = [max(len(r[i]) for r in self.rows + [("case", "expected", "got", False)]) for i in range(3)]
        print(" | ".join(h.ljust(w) for h, w in zip(("case", "expected", "got"), widths)) + " | result")
        print("-|-".join("-" * w for w in widths) + "-|-------")
        for case, expected, got, ok in self.rows:
            print(" | ".join(c.ljust(w) for c, w in zip((case, expected, got), widths)) + " | "
                  + ("PASS" if ok else "FAIL"))
        failed = sum(not r[3] for r in self.rows)
        print(f"\n{len(self.rows) - failed} of {len(self.rows)} cases pass")
        return 1 if failed else 0
