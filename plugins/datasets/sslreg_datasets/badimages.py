"""Counts the images a source had to skip and stops the run once too many of them are unreadable."""

from __future__ import annotations

from dataclasses import dataclass, field

from sslreg import UserError


class TooManyBadImages(UserError):
    """More than ``max_bad_fraction`` of the images seen so far could not be decoded (bad data: a UserError)."""


@dataclass
class BadImageCounter:
    """Good/bad tallies of one source with the first ``keep`` bad keys and why each was skipped.

    ``record_bad`` raises TooManyBadImages once at least ``min_seen`` images were seen and the bad fraction
    exceeds ``max_bad_fraction``. Each process (each DataLoader worker) holds its own copy of the counter.
    """

    source: str = "dataset"
    max_bad_fraction: float = 0.05
    min_seen: int = 100
    keep: int = 20
    seen: int = 0
    bad: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Bad images over images seen (0 before any)."""
        return self.bad / self.seen if self.seen else 0.0

    @property
    def keys(self) -> list[str]:
        """Keys (paths) of the first ``keep`` bad images."""
        return [key for key, _ in self.examples]

    def record_good(self) -> None:
        """Count one image that decoded."""
        self.seen += 1

    def record_bad(self, key: str, reason: str = "unreadable") -> None:
        """Count one skipped image; raise once the bad fraction is over the limit."""
        self.seen += 1
        self.bad += 1
        if len(self.examples) < self.keep:
            self.examples.append((key, reason))
        self.check()

    def check(self) -> None:
        """Raise TooManyBadImages when over the limit (and at least ``min_seen`` images were seen)."""
        if self.seen >= self.min_seen and self.fraction > self.max_bad_fraction:
            first = "; ".join(f"{key} ({reason})" for key, reason in self.examples[:3])
            raise TooManyBadImages(
                f"dataset {self.source!r}: {self.bad} of {self.seen} images unreadable ({self.fraction:.1%}),"
                f" more than max_bad_fraction={self.max_bad_fraction:g}; first: {first}"
            )

    def merge(self, other: BadImageCounter) -> None:
        """Add another process's tallies (e.g. a DataLoader worker's) to this one."""
        self.seen += other.seen
        self.bad += other.bad
        self.examples.extend(other.examples[: max(0, self.keep - len(self.examples))])

    def summary(self) -> str:
        """One line for the end-of-run report."""
        if not self.bad:
            return f"{self.source}: {self.seen} images read, none skipped"
        shown = ", ".join(self.keys[:5]) + (", ..." if self.bad > 5 else "")
        return f"{self.source}: {self.bad} of {self.seen} images skipped ({self.fraction:.2%}): {shown}"
