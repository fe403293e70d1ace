"""Rating aggregates: each product keeps (count, sum) of its reviews' ratings.

The aggregate is changed in the same transaction as the review, by the delta computed here and
applied with ``SET count = count + Δ`` (never read-modify-write), so concurrent reviews of one
product cannot lose each other's updates and the average always equals the reviews' average.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import Invalid

MIN_RATING, MAX_RATING = 1, 5


def check_rating(rating: int) -> None:
    if not MIN_RATING <= rating <= MAX_RATING:
        raise Invalid("rating", "range", f"rating must be {MIN_RATING}..{MAX_RATING}")


@dataclass(frozen=True)
class RatingDelta:
    count: int
    sum: int

    @classmethod
    def added(cls, rating: int) -> RatingDelta:
        check_rating(rating)
        return cls(1, rating)

    @classmethod
    def changed(cls, old: int, new: int) -> RatingDelta:
        check_rating(new)
        return cls(0, new - old)

    @classmethod
    def removed(cls, rating: int) -> RatingDelta:
        return cls(-1, -rating)


@dataclass(frozen=True)
class RatingAggregate:
    count: int = 0
    sum: int = 0

    def apply(self, delta: RatingDelta) -> RatingAggregate:
        count, total = self.count + delta.count, self.sum + delta.sum
        if count < 0 or not count <= total <= MAX_RATING * count:
            raise ValueError(f"rating aggregate would become inconsistent: {count}, {total}")
        return RatingAggregate(count, total)

    @property
    def average(self) -> float | None:
        """Rounded to two places; None when there is no review (not 0: nobody rated it 0)."""
        return round(self.sum / self.count, 2) if self.count else None
