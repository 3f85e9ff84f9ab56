"""Write the generated documentation: ``docs/cli.md`` from the option definitions (a test keeps it equal)."""

from pathlib import Path

from chronos_distill.cli import options_reference

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    target.write_text(options_reference())
    print(f"wrote {target}")
