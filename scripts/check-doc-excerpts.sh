#!/usr/bin/env bash
# Checks that every ```swift block of the plugin guide (docs/writing-a-plugin.md, or the
# Markdown files given as arguments) is still what its source says, so the guide cannot drift
# from code that compiles. Each block must come right after an HTML comment naming its source
# (a path from the repository root):
#
#   <!-- excerpt: Examples/CustomBackplane/Sources/ImSharedDirectory/LogBus.swift -->
#     The block is a contiguous run of the file's lines. Lines are compared with leading and
#     trailing spaces stripped, and blank lines are ignored on both sides.
#   <!-- quote: Sources/ImBackplane/Bus.swift -->
#     An abridged quote (of the SDK's protocols, say): every line of the block appears in the
#     file, in the same order, other lines of the file (doc comments, attributes, members left
#     out) in between. Lines of the block that are comments (`// …`) are elisions and are not
#     looked up.
#
# A ```swift block without such a comment fails, and so does a comment with no block after it.
# Needs python3 only (no build); .ci/run runs it. Exits 1 naming every block that does not match.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -eq 0 ]]; then set -- docs/writing-a-plugin.md; fi

exec python3 - "$@" <<'PY'
import re
import sys

ANNOTATION = re.compile(r"^\s*<!--\s*(excerpt|quote):\s*(\S+)\s*-->\s*$")
FENCE_OPEN = re.compile(r"^\s*```\s*swift\s*$")
FENCE_CLOSE = re.compile(r"^\s*```\s*$")


def normalised(lines, first_number):
    """(line number, stripped text) of the non-blank lines."""
    return [(first_number + i, line.strip()) for i, line in enumerate(lines) if line.strip()]


def blocks(text):
    """The ```swift blocks, as (fence line number, kind, source path or None, [(line number, text)]),
    and (line number, message) for each annotation with no block after it."""
    lines = text.split("\n")
    found = []
    problems = []
    pending = None  # (line number, kind, source) of an annotation not yet followed by a block

    def dangling():
        number, kind, source = pending
        return (number, f"<!-- {kind}: {source} --> is not followed by a ```swift block")

    index = 0
    while index < len(lines):
        line = lines[index]
        match = ANNOTATION.match(line)
        if match:
            if pending:
                problems.append(dangling())
            pending = (index + 1, match.group(1), match.group(2))
        elif FENCE_OPEN.match(line):
            end = index + 1
            while end < len(lines) and not FENCE_CLOSE.match(lines[end]):
                end += 1
            body = normalised(lines[index + 1:end], index + 2)
            kind, source = (pending[1], pending[2]) if pending else (None, None)
            found.append((index + 1, kind, source, body))
            pending = None
            index = end
        elif line.strip() and pending:
            problems.append(dangling())
            pending = None
        index += 1
    if pending:
        problems.append(dangling())
    return found, problems


def check_excerpt(block, source):
    """None if block is a contiguous run of source, else why not."""
    texts = [text for _, text in block]
    best = (0, None)  # lines matched, source index of the run's start
    for start in range(len(source)):
        matched = 0
        while (matched < len(texts) and start + matched < len(source)
               and source[start + matched][1] == texts[matched]):
            matched += 1
        if matched == len(texts):
            return None
        if matched > best[0]:
            best = (matched, start)
    matched, start = best
    if matched == 0:
        return f"its first line `{texts[0]}` is not in the file"
    number, text = block[matched]
    if start + matched < len(source):
        source_number, source_text = source[start + matched]
        differs = f"source line {source_number} reads `{source_text}`"
    else:
        differs = "the file ends there"
    return (f"its first {matched} of {len(texts)} lines match the file from line {source[start][0]} on (the "
            f"closest match), then the block's line {number} reads `{text}` where {differs}")


def check_quote(block, source):
    """None if every non-comment line of block appears in source in order, else why not."""
    code = [(number, text) for number, text in block if not text.startswith("//")]
    if not code:
        return "it has no line to look up (only comments)"
    position = 0
    for number, text in code:
        while position < len(source) and source[position][1] != text:
            position += 1
        if position == len(source):
            anywhere = any(source_text == text for _, source_text in source)
            where = "appears in the file only before the previous quoted line" if anywhere else "is not in the file"
            return f"the block's line {number} `{text}` {where}"
        position += 1
    return None


def main(paths):
    failures = []
    checked = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            failures.append(f"{path}: cannot read: {error.strerror}")
            continue
        found, problems = blocks(text)
        here = list(problems)  # (line number, message), reported in document order
        sources = {}
        for fence, kind, source_path, body in found:
            checked += 1
            label = f"```swift block starting `{body[0][1] if body else '(empty)'}`"
            if kind is None:
                here.append((fence, f"{label} names no source: put <!-- excerpt: path --> or <!-- quote: path --> "
                             "right before it (see scripts/check-doc-excerpts.sh)"))
                continue
            if not body:
                here.append((fence, f"{label} is empty"))
                continue
            if source_path not in sources:
                try:
                    with open(source_path, encoding="utf-8") as file:
                        sources[source_path] = normalised(file.read().split("\n"), 1)
                except OSError as error:
                    sources[source_path] = None
                    here.append((fence, f"{label}: its source {source_path} cannot be read: {error.strerror}"))
            source = sources[source_path]
            if source is None:
                continue
            why = (check_excerpt if kind == "excerpt" else check_quote)(body, source)
            if why:
                what = "a contiguous excerpt" if kind == "excerpt" else "an in-order quote"
                here.append((fence, f"{label} is not {what} of {source_path}: {why}"))
        failures += [f"{path}:{number}: {message}" for number, message in sorted(here)]
    for failure in failures:
        print(f"check-doc-excerpts: {failure}", file=sys.stderr)
    if failures:
        print(f"check-doc-excerpts: {len(failures)} problem(s) in {', '.join(paths)}; make each block match its "
              "source again (copy the lines from the file) or name the right source", file=sys.stderr)
        return 1
    print(f"check-doc-excerpts: {checked} swift blocks in {', '.join(paths)} match their sources")
    return 0


sys.exit(main(sys.argv[1:]))
PY
