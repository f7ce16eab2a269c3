"""Progress over the cross-validation splits: one line per split, and a live bar on a terminal."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from tqdm import tqdm

from training.evaluate import SplitResult


class SplitProgress:
    """Prints ``split 7/30  subset accuracy 0.810`` per split; with ``bar``, also a progress bar
    showing the running mean, the elapsed time and an estimate of the time left."""

    def __init__(self, total: int, *, bar: bool):
        self._bar = tqdm(
            total=total,
            desc="cross-validation",
            unit="split",
            file=sys.stdout,
            disable=not bar,
            leave=False,
            dynamic_ncols=True,
        )
        self._accuracies: list[float] = []

    def __call__(self, result: SplitResult) -> None:
        accuracy = result.metrics["subset_accuracy"]
        self._accuracies.append(accuracy)
        self._bar.write(
            f"split {result.index}/{result.total}  subset accuracy {accuracy:.3f}", file=sys.stdout
        )
        sys.stdout.flush()
        running_mean = sum(self._accuracies) / len(self._accuracies)
        self._bar.set_postfix_str(f"mean subset accuracy {running_mean:.3f}", refresh=False)
        self._bar.update()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.close()


def show_bar(*, quiet: bool) -> bool:
    """A bar only for a person watching: not with ``--quiet``, not into a pipe or a log file."""
    return not quiet and sys.stdout.isatty()
