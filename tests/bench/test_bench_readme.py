"""--readme regenerates the README's results block between its markers, nothing else."""

from __future__ import annotations

from pathlib import Path

from benchmarks.run import README_END, README_START, update_readme


def test_update_readme_replaces_only_the_marked_block(tmp_path: Path) -> None:
    """Test that updating the README replaces only the marked block."""
    path = tmp_path / "README.md"
    path.write_text(
        f"# Title\n\n{README_START}\nold table\n{README_END}\n\n## Next\nkeep\n"
    )
    assert update_readme(path, "| new | table |\n")
    text = path.read_text()
    assert "old table" not in text and "| new | table |" in text
    assert text.startswith("# Title\n") and text.endswith("## Next\nkeep\n")
    assert update_readme(path, "again")
    assert text.replace("| new | table |", "again") == path.read_text()
    path.write_text("no markers")
    assert not update_readme(path, "x")
    assert path.read_text() == "no markers"
