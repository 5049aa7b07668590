"""accel sample images: deterministic pseudo-random numbers.

The sample images must come out byte-identical on every machine and with
every Python 3, because tests and benchmarks compare them by hash.  Python's
own random module promises reproducible sequences only for random() and
only within a version, so the generators use this instead: SplitMix64 (a
tiny, well-known generator with exact 64-bit arithmetic) for the many small
decisions, and SHAKE-256 for bulk bytes (fast, since hashlib is C).  Every
stream is named by a label, so adding a new stream never shifts the values
of the existing ones.
"""

import hashlib

_M64 = (1 << 64) - 1


def stream(seed, label, n):
    """n pseudo-random bytes named by (seed, label)."""
    return hashlib.shake_256(f"{seed}:{label}".encode()).digest(n)


class Rng:
    """SplitMix64 seeded from (seed, label)."""

    def __init__(self, seed, label):
        digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
        self.state = int.from_bytes(digest[:8], "little")

    def u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def below(self, n):
        """An integer in [0, n): multiply-shift, bias < n / 2^64."""
        return (self.u64() * n) >> 64

    def between(self, lo, hi):
        """An integer in [lo, hi], both included."""
        return lo + self.below(hi - lo + 1)

    def chance(self, p):
        """True with probability p."""
        return self.u64() < int(p * 2**64)

    def log_uniform(self, lo, hi):
        """An integer in [lo, hi] (lo >= 1) spread evenly over the
        doublings between them: many small values and a few large ones, as
        file sizes and gap lengths are.  Integer-only, so that no platform
        can round differently.
        """
        octaves = 1
        while lo << octaves < hi:
            octaves += 1
        first = lo << self.below(octaves)
        return self.between(first, min(hi, 2 * first - 1))
