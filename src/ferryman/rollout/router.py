"""Which version serves a request: a pure, deterministic function of its key and the weights.

Assignment and weights are kept apart, as the peers' lessons advise: a request's key (a
sticky key such as a user id, or else its request id) is hashed with the rollout's salt
into one of :data:`~ferryman.rollout.base.BUCKETS` buckets, and the candidate serves the
buckets below its weight. The same key always lands in the same bucket, so raising the
candidate's weight from 10 % to 25 % keeps every user who saw the candidate on it, and
stickiness never distorts the split. Mirroring (shadow) is decided the same way on a
second, independent hash.

>>> router = Router(weight=25.0, salt="s1")
>>> router.routes_to_candidate("user-7") == router.routes_to_candidate("user-7")
True
>>> Router(weight=0.0, salt="s1").routes_to_candidate("anyone")
False
"""

from __future__ import annotations

from hashlib import blake2b

from ferryman.rollout.base import BUCKETS


def bucket(salt: str, key: str) -> int:
    """Return the bucket of ``key`` under ``salt``, in ``[0, BUCKETS)``.

    >>> 0 <= bucket("salt", "user-1") < 10_000
    True
    """
    digest = blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "little") % BUCKETS


class Router:
    """Routes requests between the stable version and a candidate.

    Args:
        weight: The candidate's share of live traffic, percent in [0, 100].
        salt: The rollout's salt; different rollouts split users differently.
        mirror: Share of requests whose copy goes to the candidate (shadow), in [0, 1].
    """

    def __init__(self, *, weight: float, salt: str, mirror: float = 0.0) -> None:
        if not 0.0 <= weight <= 100.0:
            raise ValueError(f"weight {weight!r} is not a percentage in [0, 100]")
        if not 0.0 <= mirror <= 1.0:
            raise ValueError(f"mirror {mirror!r} is not a share in [0, 1]")
        self.weight = weight
        self.salt = salt
        self.mirror = mirror
        self._threshold = round(weight * BUCKETS / 100.0)
        self._mirror_threshold = round(mirror * BUCKETS)
        self._mirror_salt = "mirror:" + salt

    def __repr__(self) -> str:
        return f"Router(weight={self.weight!r}, salt={self.salt!r}, mirror={self.mirror!r})"

    def routes_to_candidate(self, key: str) -> bool:
        """Whether the request with routing key ``key`` is served by the candidate."""
        threshold = self._threshold
        if threshold <= 0:
            return False
        if threshold >= BUCKETS:
            return True
        return bucket(self.salt, key) < threshold

    def mirrors(self, key: str) -> bool:
        """Whether a copy of the request with key ``key`` goes to the candidate."""
        threshold = self._mirror_threshold
        if threshold <= 0:
            return False
        if threshold >= BUCKETS:
            return True
        return bucket(self._mirror_salt, key) < threshold


__all__ = ["Router", "bucket"]
