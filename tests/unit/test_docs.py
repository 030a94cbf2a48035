"""The docs are tested like code: every ``peerweb COMMAND --option`` they name exists in the
CLI, every relative link resolves (anchors included), and the service unit runs what the
guide says it runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from peerweb.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SERVICE = ROOT / "docs" / "peerweb.service"

# A mention of the command: `peerweb ...`, `.venv/bin/peerweb ...`, `%h/.local/bin/peerweb ...`,
# never `peerweb.middleware`, `src/peerweb/example_site` or "peerweb holders v1:".
MENTION = re.compile(r"(?<![\w.\"-])(?:[\w.~%-]*/bin/)?peerweb(?=[ \t])")
# Where a shell command ends: a comment, a pipe, &&, ;, the close of $( ... ).
COMMAND_END = re.compile(r"\s#|\s&&|\s\|\|?\s|;|\)|`")
SHELL_COMMENT = re.compile(r"(?:^|\s)#(?:\s|$)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def code_of(text: str) -> list[str]:
    """The command lines in ``text``: fenced blocks (backslash continuations joined) and
    inline code spans outside them."""
    lines: list[str] = []
    for block in FENCE.findall(text):
        lines += block.replace("\\\n", " ").splitlines()
    lines += INLINE.findall(FENCE.sub("", text))
    return lines


def mentions(line: str) -> list[list[str]]:
    """The words after each ``peerweb`` in a command line, up to where its command ends."""
    found = []
    line = SHELL_COMMENT.split(line, maxsplit=1)[0]  # prose, not commands
    for match in MENTION.finditer(line):
        rest = COMMAND_END.split(line[match.end():], maxsplit=1)[0]
        try:
            words = shlex.split(rest)
        except ValueError:  # an unbalanced quote in prose: the plain words will do
            words = rest.split()
        found.append(words)
    return found


def long_and_short(command: click.Command, ctx: click.Context) -> set[str]:
    names: set[str] = set()
    for param in command.get_params(ctx):
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def check(words: list[str]) -> str | None:
    """What is wrong with ``peerweb WORDS`` (None: nothing)."""
    command: click.Command = main
    ctx = click.Context(main, info_name="peerweb")
    path = ["peerweb"]
    allowed = long_and_short(main, ctx)
    for word in words:
        if isinstance(command, click.Group) and not word.startswith("-"):
            sub = command.commands.get(word)
            if sub is None:
                if word.isupper() or word.startswith("<"):  # peerweb COMMAND --help
                    return None
                return f"{' '.join(path)} has no command {word!r}"
            command, ctx = sub, click.Context(sub, parent=ctx, info_name=word)
            path.append(word)
            allowed |= long_and_short(sub, ctx)  # global options come on either side
            continue
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name = word.split("=", 1)[0]
        if re.fullmatch(r"-([a-zA-Z])\1+", name):  # -vv is -v twice
            name = name[:2]
        if name not in allowed:
            return f"{' '.join(path)} has no option {name}"
    return None


def every_mention() -> list[tuple[str, list[str]]]:
    found = []
    for doc in [*DOCS, SERVICE]:
        text = doc.read_text()
        lines = code_of(text) if doc.suffix == ".md" else text.splitlines()
        for line in lines:
            found += [(f"{doc.relative_to(ROOT)}: {line.strip()}", words)
                      for words in mentions(line)]
    return found


def test_the_docs_name_many_commands() -> None:
    named = {words[0] for _where, words in every_mention() if words}
    assert set(main.commands) <= named, set(main.commands) - named


@pytest.mark.parametrize("where, words", every_mention(), ids=lambda v: str(v)[:60])
def test_every_command_and_option_the_docs_name_exists(where: str, words: list[str]) -> None:
    assert check(words) is None, f"{where}: {check(words)}"


def test_the_checker_catches_what_does_not_exist() -> None:
    assert check(["node", "--gateway", "x", "-vv", "--log-file", "f"]) is None
    assert check(["--json", "key", "export", "blog", "-o", "f"]) is None
    assert check(["COMMAND", "--help"]) is None
    assert check(["nodes"]) == "peerweb has no command 'nodes'"
    assert check(["node", "--gatway", "x"]) == "peerweb node has no option --gatway"
    assert check(["key", "export", "--v1"]) == "peerweb key export has no option --v1"
    assert mentions("peerweb publish ./x --json | jq -r .url  # the url") == [
        ["publish", "./x", "--json"]]
    assert mentions("see peerweb.middleware and src/peerweb/example_site") == []
    assert mentions("ExecStart=%h/.local/bin/peerweb node") == [["node"]]
    assert mentions("make install   # links ~/.local/bin/peerweb to it") == []
    assert mentions('sha1("peerweb holders v1:" + key)') == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text())
    return {slug(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)}


def links() -> list[tuple[Path, str]]:
    found = []
    for doc in DOCS:
        text = FENCE.sub("", doc.read_text())
        found += [(doc, target) for target in LINK.findall(text)
                  if not re.match(r"[a-z]+:", target)]
    return found


def test_there_are_links_to_check() -> None:
    assert len(links()) > 10


@pytest.mark.parametrize("doc, target", links(), ids=lambda v: str(v)[-40:])
def test_every_relative_link_resolves(doc: Path, target: str) -> None:
    name, _, anchor = target.partition("#")
    path = (doc.parent / name).resolve() if name else doc
    assert path.exists(), f"{doc.relative_to(ROOT)} links to {target}, which does not exist"
    if anchor and path.suffix == ".md":
        assert anchor in anchors(path), f"{doc.relative_to(ROOT)}: no heading #{anchor} in {name}"


def test_the_service_unit_runs_the_installed_node_and_stops_it() -> None:
    lines = dict(line.split("=", 1) for line in SERVICE.read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert lines["ExecStart"] == "%h/.local/bin/peerweb node"
    assert lines["ExecStop"].startswith("%h/.local/bin/peerweb stop")
    assert lines["Restart"] == "on-failure"
    assert lines["WantedBy"] == "default.target"  # a user unit


def test_the_license_matches_pyproject() -> None:
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
