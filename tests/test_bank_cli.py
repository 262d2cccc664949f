"""`modbot bank export|import`: the bank CSV round-trips into a fresh database; a file with a
bad hash, verdict or date is refused whole, naming its line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.adapters.database.bank import BankStore
from bot.adapters.database.scans import Store
from bot.core.pdq import BankEntry

HEADER = "pdq,quality,verdict,labels,first_seen"
ENTRIES = [
    BankEntry("0" * 63 + "1", 100, True, ("Exposed Female Nipple", "Weapons"), 1_767_225_600.0),
    BankEntry("f" * 64, 80, False, (), 1_767_312_000.0),
    BankEntry("ab" * 32, 42, True, ("Hate Symbols",), 1_767_398_400.0),
]


def _use(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")


def _seed(path: Path) -> None:
    async def seed() -> None:
        store = Store.from_url(f"sqlite+aiosqlite:///{path}")
        await store.upgrade()
        await BankStore(store).import_entries(ENTRIES)
        await store.close()

    asyncio.run(seed())


def _rows(path: Path) -> list[BankEntry]:
    async def read() -> list[BankEntry]:
        store = Store.from_url(f"sqlite+aiosqlite:///{path}")
        try:
            return [entry async for entry in BankStore(store).export()]
        finally:
            await store.close()

    return asyncio.run(read())


def test_export_then_import_into_a_fresh_database_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row, its labels and its date arrive; exporting the copy gives the same file."""
    source, fresh, exported = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "bank.csv"
    _seed(source)
    _use(monkeypatch, source)
    assert main(["bank", "export", str(exported)]) == 0
    lines = exported.read_text().splitlines()
    assert lines[0] == HEADER
    assert (
        lines[1] == "0" * 63 + "1,100,violation,Exposed Female Nipple;Weapons,2026-01-01T00:00:00Z"
    )

    _use(monkeypatch, fresh)
    assert main(["bank", "import", str(exported)]) == 0
    assert "imported 3 of 3 rows" in capsys.readouterr().out
    assert _rows(fresh) == ENTRIES
    assert main(["bank", "export"]) == 0  # to standard output
    assert capsys.readouterr().out.splitlines() == lines

    assert main(["bank", "import", str(exported)]) == 0  # again: nothing new
    assert "imported 0 of 3 rows (3 already in the bank)" in capsys.readouterr().out
    assert len(_rows(fresh)) == 3


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("abc,100,violation,,2026-01-01T00:00:00Z", "pdq 'abc' is not 64 hex digits"),
        ("g" * 64 + ",100,violation,,2026-01-01T00:00:00Z", "is not 64 hex digits"),
        ("f" * 64 + ",100,maybe,,2026-01-01T00:00:00Z", "verdict 'maybe' is not violation"),
        ("f" * 64 + ",100,violation,,yesterday", "first_seen 'yesterday' is not a date and time"),
        ("f" * 64 + ",100,violation,,2026-01-01T00:00:00", "not a date and time"),  # no zone
        ("f" * 64 + ",101,violation,,2026-01-01T00:00:00Z", "quality '101'"),
        ("f" * 64 + ",100,violation", "3 fields where 5 are expected"),
    ],
)
def test_a_bad_row_refuses_the_whole_file_naming_its_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bad: str,
    reason: str,
) -> None:
    """Line 3 is bad: exit 1, the line and reason named, and not even line 2 is imported."""
    path = tmp_path / "bank.csv"
    good = "e" * 64 + ",90,no_violation,,2026-01-01T00:00:00Z"
    path.write_text("\n".join([HEADER, good, bad, good.replace("e", "d")]) + "\n")
    database = tmp_path / "fresh.db"
    _use(monkeypatch, database)
    assert main(["bank", "import", str(path)]) == 1
    error = capsys.readouterr().err
    assert f"{path}: line 3: " in error
    assert reason in error
    assert "nothing was imported" in error
    assert not database.exists() or _rows(database) == []


def test_a_wrong_header_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The header row is part of the format: line 1 named."""
    path = tmp_path / "bank.csv"
    path.write_text("hash,verdict\n" + "f" * 64 + ",violation\n")
    _use(monkeypatch, tmp_path / "fresh.db")
    assert main(["bank", "import", str(path)]) == 1
    assert (
        "line 1: the header must be pdq,quality,verdict,labels,first_seen"
        in capsys.readouterr().err
    )


def test_export_of_a_missing_database_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in DATABASE_URL is said, not answered with an empty bank."""
    _use(monkeypatch, tmp_path / "nowhere.db")
    assert main(["bank", "export"]) == 1
    assert "no database file at" in capsys.readouterr().err
