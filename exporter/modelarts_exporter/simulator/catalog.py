"""What the synthetic tenant is made of: pools, flavors, descriptions, statuses, life-cycle odds.

Constants only, so the shape of the fake data can be read (and tuned) in one place. Weights are
relative; they need not sum to 1.
"""

from __future__ import annotations

from typing import Final

POOLS: Final[tuple[tuple[str | None, float], ...]] = (
    # ``None`` is the shared public pool: its versions carry no ``pool_id`` key at all.
    (None, 0.40),
    ("pool9928813f", 0.30),
    ("pool6b1e0c42", 0.20),
    ("poola13d77e9", 0.10),
)

FLAVORS: Final[tuple[tuple[str, int, int, float], ...]] = (
    # (flavor_code, gpu_num, npu_num, weight)
    ("modelarts.vm.cpu.2u", 0, 0, 0.08),
    ("modelarts.vm.cpu.8u", 0, 0, 0.12),
    ("modelarts.p1.2xlarge", 1, 0, 0.25),
    ("modelarts.p3.2xlarge", 1, 0, 0.15),
    ("modelarts.p3.8xlarge", 4, 0, 0.20),
    ("modelarts.p3.16xlarge", 8, 0, 0.05),
    ("modelarts.bm.ascend.d910.8", 0, 8, 0.15),
)
DEFAULT_FLAVOR: Final = "modelarts.p1.2xlarge"

DESCRIPTIONS: Final[tuple[tuple[str | None, float], ...]] = (
    # Quotes, non-ASCII and control characters are here on purpose: they exercise JSON escaping.
    (None, 0.50),
    ("", 0.05),
    ("baseline", 0.10),
    ("resnet50 on imagenet", 0.08),
    ("lr=3e-4 sweep", 0.08),
    ("bert-base fine-tune", 0.08),
    ("nightly retrain", 0.06),
    ('ablation: no "augmentation"', 0.03),
    ("数据增强实验", 0.01),
    ("first line\nsecond line", 0.01),
)

TERMINAL_MIX: Final[tuple[tuple[int, float], ...]] = (
    (10, 0.700),  # completed
    (11, 0.110),  # failed
    (12, 0.060),  # killed
    (13, 0.050),  # canceled
    (3, 0.020),  # image failed
    (14, 0.010),  # lost
    (5, 0.010),  # submit failed
    (20, 0.010),  # review completed
    (16, 0.005),
    (17, 0.005),
    (21, 0.005),
    (22, 0.005),
    (6, 0.005),
)
"""Statuses of finished versions at generation time."""

ACTIVE_MIX: Final[tuple[tuple[int, float], ...]] = (
    (1, 0.02),
    (2, 0.02),
    (4, 0.02),
    (7, 0.07),
    (18, 0.01),
    (19, 0.01),
    (8, 0.75),
    (15, 0.03),
    (9, 0.07),
)
"""Statuses of active versions, roughly the steady-state shares of the life cycle below."""

UNKNOWN_CODES: Final[tuple[int, ...]] = (23, 42, 99)
"""Codes outside the documented table, for ``unknown_status_fraction``."""

NEVER_STARTED: Final = frozenset({3, 5, 13, 22})
"""Terminal statuses reached before the job ran: ``start_time`` and ``duration`` stay 0."""

NEW_VERSION_MIX: Final[tuple[tuple[int, float], ...]] = ((1, 0.5), (2, 0.2), (7, 0.3))
"""Status of a version when it is created."""

# Life cycle: after an exponential dwell in its state, an active version moves on with these odds.
SCALE: Final = 255
"""Pseudo-target, not a status: running 8 ⇄ scaling 15 (stays running)."""
PENDING_NEXT: Final[tuple[tuple[int, float], ...]] = ((8, 0.88), (13, 0.07), (3, 0.03), (5, 0.02))
RUNNING_NEXT: Final[tuple[tuple[int, float], ...]] = (
    (10, 0.78),
    (11, 0.10),
    (14, 0.01),
    (9, 0.08),
    (SCALE, 0.03),
)
KILLING_NEXT: Final = 12

# Mean dwell per phase, relative; the tenant scales them so that creation rate * mean active
# lifetime = the wanted number of active versions (Little's law).
PENDING_DWELL: Final = 0.15
RUNNING_DWELL: Final = 0.80
KILLING_DWELL: Final = 0.05

MIN_CREATION_RATE_PER_S: Final = 0.05
"""Floor of the default creation rate (size / 100,000 per second), so tiny tenants change too."""
