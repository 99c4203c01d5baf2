"""Write a synthetic dataset in the Kaggle "E-commerce website funnel analysis" layout and shape.

Files: ``user_table.csv`` (quoted fields, LF) and ``home_page_table.csv``, ``search_page_table.csv``,
``payment_page_table.csv``, ``payment_confirmation_table.csv`` (CRLF, no final newline), as in the
real export, so the generated data goes through the same reader quirks.

Shape, calibrated on the real files (per device and sign-up month, see ``STEP_RATES``): desktop:mobile
about 2:1, sex about 50/50, dates spread evenly over 2015-01..2015-04, overall home->search 50 %,
search->payment 10 % desktop / 20 % mobile, payment->confirmation 5 % desktop / 10 % mobile. As in the
real data, conversion collapses from March: desktop search->payment falls from 16 % to 4 % and mobile
home->search from 80 % to 20 %.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date
from pathlib import Path

import numpy as np

from gateway.errors import BadInput

YEAR = 2015
MONTHS = (1, 2, 3, 4)
DESKTOP_SHARE = 2 / 3
MALE_SHARE = 0.5
PAGE_FILES = (
    ("home_page_table.csv", "home_page"),
    ("search_page_table.csv", "search_page"),
    ("payment_page_table.csv", "payment_page"),
    ("payment_confirmation_table.csv", "payment_confirmation_page"),
)
# P(next step | previous step) for users signing up in January, February, March, April.
# Measured on the real files: e.g. desktop search->payment 0.162 0.156 0.040 0.040.
STEP_RATES: dict[str, tuple[tuple[float, ...], ...]] = {
    # home->search, search->payment, payment->confirmation
    "Desktop": ((0.50, 0.50, 0.50, 0.50), (0.16, 0.16, 0.04, 0.04), (0.05, 0.05, 0.05, 0.05)),
    "Mobile": ((0.80, 0.80, 0.20, 0.20), (0.20, 0.20, 0.20, 0.20), (0.10, 0.10, 0.10, 0.10)),
}

# Ids are drawn from 1..10 x users and must fit GraphQL's 32-bit Int (ingest refuses larger ones), which
# caps users at 214,748,364. The cap is ten million (110 x the Kaggle data's 90,400 users), well below
# that, because the files are built in memory: one million users took 2.1 s, 0.45 GB of memory and wrote
# 70 MB here, so the cap is ~0.7 GB of CSV and ~4.5 GB of memory, and a typo cannot ask for far more.
MAX_USERS = 10_000_000


def argument_problem(users: int, seed: int) -> tuple[str, str] | None:
    """What is wrong with these arguments, as (flag, message), or None: one rule for the library call
    and the command line, which reports it before anything is created."""
    if not 1 <= users <= MAX_USERS:
        return "--users", (
            f"must be 1..{MAX_USERS:,} (the files are built in memory, and ids, drawn from 1..10 x users, "
            f"must fit GraphQL's 32-bit Int), got {users:,}"
        )
    return seed_problem(seed)


def seed_problem(seed: int) -> tuple[str, str] | None:
    """``--seed``'s rule, shared with ``replay``: Python's ``random.Random`` would take -1 as 1, and numpy
    refuses it, so a negative seed is refused up front rather than silently meaning another one."""
    if seed < 0:
        return "--seed", f"must be a non-negative integer, got {seed}"
    return None


def generate_dataset(out_dir: Path, users: int, seed: int) -> dict[str, int]:
    """Write the five CSVs into ``out_dir`` (created if needed); returns rows written per file name.
    The same (users, seed) always writes the same bytes."""
    problem = argument_problem(users, seed)
    if problem is not None:
        raise BadInput(" ".join(problem))
    rng = np.random.default_rng(seed)
    id_space = max(1_000_000, 10 * users)  # six-digit ids like the real file, unique
    user_ids = rng.choice(id_space, size=users, replace=False) + 1
    desktop = rng.random(users) < DESKTOP_SHARE
    male = rng.random(users) < MALE_SHARE
    month_index = rng.integers(0, len(MONTHS), size=users)
    month_days = np.array([monthrange(YEAR, m)[1] for m in MONTHS])
    day_of_month = (rng.random(users) * month_days[month_index]).astype(np.int64) + 1

    reached = [np.ones(users, dtype=bool)]
    for step in range(3):
        rate = np.where(
            desktop,
            np.array(STEP_RATES["Desktop"][step])[month_index],
            np.array(STEP_RATES["Mobile"][step])[month_index],
        )
        reached.append(reached[-1] & (rng.random(users) < rate))

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = user_ids.tolist()
    dates = [
        date(YEAR, MONTHS[m], d).isoformat()
        for m, d in zip(month_index.tolist(), day_of_month.tolist(), strict=True)
    ]
    user_lines = ['"user_id","date","device","sex"']
    user_lines.extend(
        f'{uid},"{day}","{"Desktop" if is_desktop else "Mobile"}","{"Male" if is_male else "Female"}"'
        for uid, day, is_desktop, is_male in zip(ids, dates, desktop.tolist(), male.tolist(), strict=True)
    )
    _write(out_dir / "user_table.csv", "\n".join(user_lines) + "\n")
    counts = {"user_table.csv": users}
    for (file_name, page), mask in zip(PAGE_FILES, reached, strict=True):
        page_ids = user_ids[mask].tolist()
        _write(out_dir / file_name, "\r\n".join([f"user_id,{page}", *(f"{uid},{page}" for uid in page_ids)]))
        counts[file_name] = len(page_ids)
    return counts


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
