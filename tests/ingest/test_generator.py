"""The synthetic dataset generator: the real dataset's shape, counted independently from the CSV text."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from gateway.errors import BadInput
from gateway.ingest.generator import generate_dataset
from gateway.jobs.ingest import ingest_directory
from gateway.stores.collections import USERS
from gateway.stores.contracts import DocumentStore
from tests.ingest.conftest import STEPS, dump, funnel_users

PAGE_FILES = {
    "home": "home_page_table.csv",
    "search": "search_page_table.csv",
    "payment": "payment_page_table.csv",
    "confirmation": "payment_confirmation_table.csv",
}


def _count(out: Path) -> tuple[dict[int, tuple[str, str, str]], dict[str, set[int]]]:
    """Plain csv-module reading, independent of gateway.ingest.csv_files."""
    with (out / "user_table.csv").open(newline="") as handle:
        users = {int(r["user_id"]): (r["date"], r["device"], r["sex"]) for r in csv.DictReader(handle)}
    pages = {}
    for page, name in PAGE_FILES.items():
        with (out / name).open(newline="") as handle:
            pages[page] = {int(row[0]) for row in list(csv.reader(handle))[1:]}
    return users, pages


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("generated")
    return out, generate_dataset(out, 20_000, seed=7)


def _rate(numerator: set[int], denominator: set[int]) -> float:
    return len(numerator & denominator) / len(denominator)


def test_counts_returned_match_the_files(generated: tuple[Path, dict[str, int]]) -> None:
    out, counts = generated
    users, pages = _count(out)
    assert counts == {
        "user_table.csv": len(users),
        **{PAGE_FILES[page]: len(ids) for page, ids in pages.items()},
    }
    assert len(users) == 20_000


def test_population_shape(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    users, pages = _count(out)
    devices = Counter(device for _, device, _ in users.values())
    assert set(devices) == {"Desktop", "Mobile"}
    assert 1.85 < devices["Desktop"] / devices["Mobile"] < 2.15
    sexes = Counter(sex for _, _, sex in users.values())
    assert abs(sexes["Male"] / len(users) - 0.5) < 0.02
    dates = sorted(day for day, _, _ in users.values())
    assert dates[0] >= "2015-01-01" and dates[-1] <= "2015-04-30"
    months = Counter(day[:7] for day in dates)
    assert sorted(months) == ["2015-01", "2015-02", "2015-03", "2015-04"]
    assert all(abs(n / len(users) - 0.25) < 0.02 for n in months.values())
    # Each page's users reached the page before it, as in the real files.
    assert pages["confirmation"] <= pages["payment"] <= pages["search"] <= pages["home"] == set(users)


def test_step_rates_per_device(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    users, pages = _count(out)
    for device, search_rate, payment_rate, confirm_rate in (
        ("Desktop", 0.50, 0.10, 0.05),
        ("Mobile", 0.50, 0.20, 0.10),
    ):
        group = {uid for uid, (_, d, _) in users.items() if d == device}
        # Tolerances: about 4 standard errors of a binomial share at these group sizes.
        assert abs(_rate(pages["search"], group) - search_rate) < 0.025, device
        assert abs(_rate(pages["payment"], pages["search"] & group) - payment_rate) < 0.03, device
        assert abs(_rate(pages["confirmation"], pages["payment"] & group) - confirm_rate) < 0.045, device


def test_conversion_falls_sharply_from_march(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    users, pages = _count(out)

    def cohort(device: str, months: tuple[str, ...]) -> set[int]:
        return {uid for uid, (day, d, _) in users.items() if d == device and day[5:7] in months}

    early, late = ("01", "02"), ("03", "04")
    # Desktop: search -> payment collapses (real data: 16 % -> 4 %).
    desktop_early = _rate(pages["payment"], pages["search"] & cohort("Desktop", early))
    desktop_late = _rate(pages["payment"], pages["search"] & cohort("Desktop", late))
    assert desktop_early > 0.13 and desktop_late < 0.06
    # Mobile: home -> search collapses (real data: 80 % -> 20 %).
    assert _rate(pages["search"], cohort("Mobile", early)) > 0.75
    assert _rate(pages["search"], cohort("Mobile", late)) < 0.25


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", 500, seed=3)
    generate_dataset(tmp_path / "b", 500, seed=3)
    generate_dataset(tmp_path / "c", 500, seed=4)
    for name in ("user_table.csv", *PAGE_FILES.values()):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "user_table.csv").read_bytes() != (
        tmp_path / "c" / "user_table.csv"
    ).read_bytes()


def test_files_have_the_real_exports_quirks(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 50, seed=1)
    user_table = (tmp_path / "user_table.csv").read_bytes()
    assert user_table.startswith(b'"user_id","date","device","sex"\n')
    home = (tmp_path / "home_page_table.csv").read_bytes()
    assert home.startswith(b"user_id,home_page\r\n") and not home.endswith(b"\n")
    confirmation = (tmp_path / "payment_confirmation_table.csv").read_text()
    assert confirmation.startswith("user_id,payment_confirmation_page")


@pytest.mark.parametrize(("users", "seed"), [(0, 1), (-5, 1), (10, -1)])
def test_bad_arguments_are_rejected(tmp_path: Path, users: int, seed: int) -> None:
    with pytest.raises(BadInput):
        generate_dataset(tmp_path, users, seed)
    assert not (tmp_path / "user_table.csv").exists()


async def test_generated_data_ingests_through_the_same_path(store: DocumentStore, tmp_path: Path) -> None:
    generate_dataset(tmp_path, 3_000, seed=11)
    users, pages = _count(tmp_path)
    report = await ingest_directory(store, tmp_path, seed=1)
    assert report.rejections == []
    assert await store.default_funnel() == list(STEPS)
    assert await store.count(USERS) == len(users)
    overall, by_device = await funnel_users(store)
    assert overall == [len(pages[p]) for p in STEPS]
    for device in ("Desktop", "Mobile"):
        group = {uid for uid, (_, d, _) in users.items() if d == device}
        assert by_device[device.lower()] == [len(pages[p] & group) for p in STEPS]
    # Idempotent at this size too: a second ingest leaves exactly the same documents.
    before = await dump(store)
    await ingest_directory(store, tmp_path, seed=1)
    assert await dump(store) == before
