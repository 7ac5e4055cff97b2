"""Paste a benchmark's generated ``results.md`` into the README between the results markers.

    python tools/paste_results.py docs/results/full

The start marker names the file it holds (``tests/test_readme.py`` reads the path from it and checks the block
equals that file, headings demoted one level so they sit under the README's "Results" section).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = re.compile(r"<!-- results:start \(generated: (?P<path>[^)]+)\) -->")
END = "<!-- results:end -->"


def demoted(markdown: str) -> str:
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.strip().splitlines())


def paste(results_dir: Path, readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    match = START.search(text)
    if match is None or text.count(END) != 1:
        raise SystemExit(f"{readme} needs exactly one results start marker and one {END!r}")
    source = (results_dir / "results.md").resolve().relative_to(ROOT)
    head, tail = text[: match.start()], text.split(END, 1)[1]
    block = demoted((ROOT / source).read_text())
    readme.write_text(f"{head}<!-- results:start (generated: {source.as_posix()}) -->\n{block}\n{END}{tail}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    paste(Path(sys.argv[1]))
