#!/usr/bin/env python3
"""Doc checks that need no browser (scripts/tests/docs.sh runs them):

- links: every relative link in the Markdown files resolves to a file (`/x` from the repository's
  root, as GitHub renders it), and an anchor (#…) to a heading of that file (GitHub's slugs);
- metrics: the runbook (docs/runbook.md) names every EMF metric of every function in
  lambda.manifest.json, so a new metric without a runbook entry fails;
- references: nothing in the repository sends a reader outside it: no relative link leaves the
  checkout (even to a file that exists on this machine), no mention of a design document or a
  description that is not in it (`DESIGN.md`, "the seed"), no issue or stop number of a tracker
  its readers do not have, and every `docs/design.md §N` names a section that exists;
- mermaid: writes each file's mermaid blocks to DIR (argument), one .mmd per block, for
  mermaid-cli to parse.

- selftest: the links and references checks fail on a planted tree that breaks each rule once.
- commands FILE...: prints the bash blocks marked `<!-- doc-test -->` of the files, in order, as
  one script (scripts/tests/doc_commands.sh runs it as printed).

Usage: doc_checks.py links | metrics | references | selftest | extract DIR
"""
import json
import pathlib
import re
import sys

import os

# The checked tree: the checkout, or DOC_ROOT (the self-test's planted tree).
ROOT = pathlib.Path(os.environ.get("DOC_ROOT") or pathlib.Path(__file__).resolve().parents[2]).resolve()
SKIP = {"node_modules", "target", ".venv", ".git", "dist", ".terraform"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\s*$")


def markdown_files():
    for path in sorted(ROOT.rglob("*.md")):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def slug(heading):
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def outside_code(path):
    """The file's lines that are not inside a fenced code block."""
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()) or line.strip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            yield line


def anchors(path):
    found, seen = set(), {}
    for line in outside_code(path):
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def check_links():
    problems = []
    for path in markdown_files():
        for number, line in enumerate(outside_code(path), 1):
            for match in LINK.finditer(line):
                target = match.group(1) or match.group(2)
                if re.match(r"^[a-z]+:", target) or target.startswith("//"):
                    continue
                file_part, _, anchor = target.partition("#")
                # `/x` is relative to the repository's root (as GitHub renders it), else to the file.
                if file_part.startswith("/"):
                    dest = (ROOT / file_part.lstrip("/")).resolve()
                else:
                    dest = path if not file_part else (path.parent / file_part).resolve()
                where = f"{path.relative_to(ROOT)}: link {target!r}"
                if ROOT not in dest.parents and dest != ROOT:
                    problems.append(f"{where}: leaves the repository (readers of a clone do not have it)")
                elif not dest.exists():
                    problems.append(f"{where}: no such file")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def check_metrics():
    manifest = json.loads((ROOT / "lambda.manifest.json").read_text())
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    problems = []
    for function in manifest["functions"]:
        for metric in function.get("metrics", []):
            row = re.search(rf"^\|\s*`{re.escape(function['svc'])}`\s*\|\s*`{re.escape(metric)}`\s*\|", runbook, re.M)
            if not row:
                problems.append(f"docs/runbook.md has no row for {function['svc']} {metric} ({function['name']})")
    return problems


# What points outside the repository: each pattern with what to write instead.
OUTSIDE = [
    (re.compile(r"\bDESIGN(\.md|\s*§)"), "a design document that is not in the repository: cite docs/design.md §N"),
    (re.compile(r"ws-connection-README|\b[Tt]he seed'?s?\b|\bas the seed\b"),
     "the original description is not in the repository: cite what docs/design.md says"),
    (re.compile(r"\b[Ii]ssues? #?\d+\b|\bstops? \d+\b"),
     "an issue tracker's number means nothing to a reader of the repository: say what was found"),
]
# Files that are data, not prose.
NOT_PROSE = ("Cargo.lock", "package-lock.json", "proptest-regressions/", "bench/results/", "scripts/tests/doc_checks.py")


def tracked_text_files():
    import subprocess
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in listed.decode().split("\0"):
        if not name or any(part in name for part in NOT_PROSE):
            continue
        path = ROOT / name
        try:
            yield name, path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue


def check_references():
    design = (ROOT / "docs" / "design.md")
    sections = set(re.findall(r"^## (\d+)\.", design.read_text(encoding="utf-8"), re.M)) if design.exists() else set()
    problems = []
    for name, text in tracked_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, fix in OUTSIDE:
                match = pattern.search(line)
                if match:
                    problems.append(f"{name}:{number}: {match.group(0)!r}: {fix}")
            for section in re.findall(r"design\.md §(\d+)", line):
                if section not in sections:
                    problems.append(f"{name}:{number}: docs/design.md has no section {section}")
    return problems


def extract(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in markdown_files():
        block, inside = [], False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = FENCE.match(line.strip())
            if not inside and fence and fence.group(1) == "mermaid":
                inside, block, start = True, [], number
            elif inside and line.strip() == "```":
                inside = False
                name = f"{str(path.relative_to(ROOT)).replace('/', '_')}-L{start}.mmd"
                (out / name).write_text("\n".join(block) + "\n", encoding="utf-8")
                count += 1
            elif inside:
                block.append(line)
    print(count)


def selftest():
    """Runs links and references over a planted git tree; each planted break must be reported."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = pathlib.Path(tmp) / "repo"
        (tree / "docs").mkdir(parents=True)
        (tree / "docs" / "design.md").write_text("# Design\n\n## 1. Functions\n", encoding="utf-8")
        (pathlib.Path(tmp) / "outside.md").write_text("exists, but not in the repository\n", encoding="utf-8")
        (tree / "README.md").write_text(
            "[out](../outside.md) [gone](docs/nope.md) [ok](docs/design.md#1-functions)\n"
            "[rooted](/docs/design.md) [rooted gone](/src/nope.rs)\n"
            "See DESIGN.md, as the seed says (issue 12); docs/design.md §1 and docs/design.md §7.\n",
            encoding="utf-8",
        )
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "add", "."], check=True)
        env = dict(os.environ, DOC_ROOT=str(tree))
        found = {}
        for check in ("links", "references"):
            run = subprocess.run([sys.executable, __file__, check], env=env, capture_output=True, text=True)
            found[check] = run.stderr
        expected = [
            ("links", "'../outside.md': leaves the repository"),
            ("links", "'docs/nope.md': no such file"),
            ("links", "'/src/nope.rs': no such file"),
            ("references", "'DESIGN.md'"),
            ("references", "'as the seed'"),
            ("references", "'issue 12'"),
            ("references", "docs/design.md has no section 7"),
        ]
        missed = [f"{check} did not report {text!r}" for check, text in expected if text not in found[check]]
        unexpected = [line for line in found["references"].splitlines() if "section 1" in line]
        unexpected += [line for line in found["links"].splitlines() if "'/docs/design.md'" in line]
        return missed + [f"reported what is fine: {line}" for line in unexpected]


def commands(paths):
    """The bash blocks right after a `<!-- doc-test -->` line, in order, each announced."""
    out = []
    for name in paths:
        lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "<!-- doc-test -->":
                continue
            if i + 1 >= len(lines) or lines[i + 1].strip() != "```bash":
                sys.exit(f"{name}:{i + 1}: a doc-test marker must come right before a ```bash block")
            end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
            out.append(f"echo '### {name}:{i + 3}' >&2")
            out.extend(lines[i + 2:end])
    print("\n".join(out))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "commands":
        commands(sys.argv[2:])
        return 0
    if what == "extract":
        extract(sys.argv[2])
        return 0
    problems = {"links": check_links, "metrics": check_metrics, "references": check_references, "selftest": selftest}[what]()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
