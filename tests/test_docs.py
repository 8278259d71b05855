"""The docs' examples must be valid: YAML blocks parse, Kubernetes manifests have their
kinds, synthprobe configs validate, the reference documents every command, key and
reason, and the documentation site (mkdocs.yml) has every page and no broken link
from the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from synthprobe.config import load_sources
from synthprobe.config.schema import EXPECT_KEYS, PROBE_KEYS, SETTINGS_KEYS, STEP_KEYS
from synthprobe.models import Failure, Reason
from synthprobe.probers import KINDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in [*DOCS, ROOT / "README.md"]:
        for i, block in enumerate(BLOCK.findall(doc.read_text())):
            blocks.append((f"{doc.name}#{i}", block))
    return blocks


BLOCKS = yaml_blocks()


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_yaml_blocks_parse(where: str, block: str) -> None:
    documents = list(yaml.safe_load_all(block))
    assert documents and all(d is not None for d in documents), where


def test_kubernetes_manifests_are_complete() -> None:
    text = (ROOT / "docs" / "scale.md").read_text()
    manifests = [
        d
        for block in BLOCK.findall(text)
        for d in yaml.safe_load_all(block)
        if isinstance(d, dict) and "apiVersion" in d
    ]
    kinds = {m["kind"] for m in manifests}
    assert {"ConfigMap", "CronJob"} <= kinds
    for m in manifests:
        assert m["metadata"]["name"]
    cron = next(m for m in manifests if m["kind"] == "CronJob")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "--location" in " ".join(container["args"])
    config = next(m for m in manifests if m["kind"] == "ConfigMap")
    loaded = load_sources([("configmap", config["data"]["probes.yaml"].encode())], env={})
    assert [p.name for p in loaded.probes] == ["feed-home", "upload-avatar"]


@pytest.mark.parametrize("doc", ["README.md", "docs/config.md"])
def test_config_example_validates(doc: str) -> None:
    text = (ROOT / doc).read_text()
    config = next(b for b in BLOCK.findall(text) if "probes:" in b)
    loaded = load_sources([(doc, config.encode())], env={"FEED_TOKEN": "t0ken-value"})
    assert {p.kind for p in loaded.probes} >= {"feed", "upload"}


def test_docs_link_from_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in DOCS:
        assert f"docs/{doc.name}" in readme, f"README does not link docs/{doc.name}"
    assert "docs/status-page.png" in readme


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readmes_links_resolve() -> None:
    """Every relative link of the README names a file of the repository (the docs pages
    among them); a page's anchor, if any, is a heading of that page."""
    links = [u for u in LINK.findall((ROOT / "README.md").read_text()) if "://" not in u]
    assert any(u.startswith("docs/") for u in links)
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links {link}: no such file"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README links {link}: no such heading"


def test_readme_gives_the_two_commands_ci_runs() -> None:
    """A newcomer's first block is `make demo` and `make test`, targets of the Makefile,
    and CI runs the README's test command as written."""
    readme = (ROOT / "README.md").read_text()
    first = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()


def test_architecture_layout_names_every_module() -> None:
    """docs/architecture.md draws the tree as it is: every module of the package is
    named in its layout, and every module it names exists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    package = block.split("src/synthprobe/", 1)[1].split("\ndeploy/", 1)[0]
    named = set(re.findall(r"\w+\.py", package))
    files = {
        p.name
        for p in (ROOT / "src" / "synthprobe").rglob("*.py")
        if "__pycache__" not in p.parts and p.name not in ("__init__.py", "__main__.py")
    }
    assert sorted(files - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - files - {"__init__.py"}) == [], "named in the layout, not in src"


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {nav!r}")


def test_every_docs_page_is_in_the_site_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    pages = _nav_pages(config["nav"])
    assert len(pages) == len(set(pages)), "a page is twice in mkdocs.yml's nav"
    assert set(pages) == {doc.name for doc in DOCS}, "mkdocs.yml's nav and docs/*.md differ"


def test_every_test_named_in_reliability_md_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)", text)
    named += [(f, n) for f, n in re.findall(r"`(tests/[\w/]+\.py)::\w+`[^|]*?`::(\w+)", text)]
    assert len(named) >= 15
    for path, name in named:
        source = (ROOT / path).read_text()
        assert f"def {name}(" in source, f"{path}::{name} is named in docs but does not exist"


_CLASSES = "|".join(f.value for f in Failure)


def _table_reasons(text: str) -> set[str]:
    # rows such as "| | `dns.timeout` | ..." or "| `dns` | `dns.nxdomain` | ..."
    return set(re.findall(rf"^\|[^|\n]*\| `((?:{_CLASSES})\.[a-z_]+)` \|", text, re.M))


REASON_TABLES = ["docs/reference.md"] + [
    name
    for name in ["README.md", *(f"docs/{d.name}" for d in DOCS)]
    if name != "docs/reference.md" and _table_reasons((ROOT / name).read_text())
]


@pytest.mark.parametrize("doc", REASON_TABLES)
def test_every_reason_is_in_the_reason_table(doc: str) -> None:
    """The reference has the table of reasons; any other page with one lists them all too."""
    listed = _table_reasons((ROOT / doc).read_text())
    known = {r.value for r in Reason}
    assert known - listed == set(), f"{doc} does not list {sorted(known - listed)}"
    assert listed - known == set(), f"{doc} lists reasons the code does not know"


# Documented names, extracted and compared as sets with what the code defines (as
# sqlite-utils' test_docs.py does for its commands): a key, option or exit code added to
# one side only fails here, naming it.

TICKED = re.compile(r"`([^`]+)`")


def _table(doc: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table under ``heading`` (a line starting with it)."""
    lines = (ROOT / doc).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif rows or line.startswith("#"):
            break
    assert len(rows) > 1, f"no table under {heading!r} in {doc}"
    return rows[1:]  # without the header row


def _first_column(doc: str, heading: str) -> set[str]:
    return {name for row in _table(doc, heading) for name in TICKED.findall(row[0])}


def _outside_parentheses(text: str) -> str:
    depth, kept = 0, []
    for c in text:
        depth += c == "("
        if not depth:
            kept.append(c)
        depth -= c == ")" and depth > 0
    return "".join(kept)


def _kind_block_keys() -> dict[str, frozenset[str]]:
    import importlib

    out = {}
    for info in KINDS.values():
        if info.block is not None:
            module = importlib.import_module(info.prober.split(":")[0].rsplit(".", 1)[0])
            out[info.block] = module.FIELDS.keys
    return out


def _steps_keys() -> set[str]:
    [row] = [r for r in _table("docs/reference.md", "### Probe keys") if r[0] == "`steps`"]
    return set(TICKED.findall(row[3].split(":", 1)[1]))


def _json_check_keys() -> set[str]:
    [row] = [r for r in _table("docs/reference.md", "### `expect`") if r[0] == "`json`"]
    inner = re.search(r"\{([^}]*)\}", row[1])
    assert inner is not None
    return {k.strip() for k in inner.group(1).split(",")}


def _documented_keys() -> list[tuple[str, set[str], frozenset[str]]]:
    from synthprobe.config import expectations, settings

    ref = "docs/reference.md"
    rows = [
        ("probe", _first_column(ref, "### Probe keys"), PROBE_KEYS),
        ("settings", _first_column(ref, "### Settings"), SETTINGS_KEYS),
        ("alert", _first_column(ref, "### `alert`"), settings.ALERT_FIELDS.keys),
        ("expect", _first_column(ref, "### `expect`"), EXPECT_KEYS),
        ("expect.json", _json_check_keys(), expectations.JSON_CHECK_FIELDS.keys),
        ("steps", _steps_keys(), STEP_KEYS),
    ]
    blocks = {r[0].strip("`"): r[1] for r in _table(ref, "### Kind blocks")}
    for block, keys in _kind_block_keys().items():
        ticked = set(TICKED.findall(_outside_parentheses(blocks.get(block, ""))))
        rows.append((f"kind block {block}", ticked, keys))
    return rows


KEY_TABLES = _documented_keys()


@pytest.mark.parametrize(
    ("documented", "defined"), [r[1:] for r in KEY_TABLES], ids=[r[0] for r in KEY_TABLES]
)
def test_reference_documents_exactly_the_config_keys(
    documented: set[str], defined: frozenset[str]
) -> None:
    assert sorted(defined - documented) == [], "keys missing from docs/reference.md"
    assert sorted(documented - defined) == [], "documented keys the config does not know"


def test_reference_documents_exactly_the_kinds() -> None:
    [row] = [r for r in _table("docs/reference.md", "### Probe keys") if r[0] == "`kind`"]
    assert set(TICKED.findall(row[1])) == set(KINDS)


def _cli() -> dict[str, list[list[str]]]:
    """Each command -> its options, each as the list of its spellings."""
    import typer.main

    from synthprobe.cli import app

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]  # a group (typer's own click)
    return {
        name: [p.opts + p.secondary_opts for p in command.params if p.param_type_name == "option"]
        for name, command in commands.items()
    }


CLI = _cli()
OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")


def test_reference_documents_exactly_the_commands() -> None:
    documented = {
        TICKED.findall(row[0])[0].split()[1] for row in _table("docs/reference.md", "## Commands")
    }
    assert documented == set(CLI)


def test_readme_names_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [c for c in sorted(CLI) if f"`probe {c}`" not in readme] == []


def _reference_options() -> dict[str, set[str]]:
    out = {}
    for row in _table("docs/reference.md", "## Commands"):
        command = TICKED.findall(row[0])[0]
        out[command.split()[1]] = set(OPTION.findall(command))
    # `probe run` has its own table of options
    out["run"] = {
        o
        for row in _table("docs/reference.md", "### `probe run` options")
        for o in OPTION.findall(row[0])
    }
    return out


REFERENCE_OPTIONS = _reference_options()


@pytest.mark.parametrize("command", sorted(CLI))
def test_reference_documents_exactly_each_commands_options(command: str) -> None:
    documented = REFERENCE_OPTIONS[command] - {"-"}
    spellings = CLI[command]
    undocumented = [s[0] for s in spellings if not documented & set(s)]
    unknown = documented - {o for s in spellings for o in s}
    assert undocumented == [], f"probe {command}: options missing from docs/reference.md"
    assert sorted(unknown) == [], f"probe {command}: docs/reference.md names options it lacks"


def test_exit_codes_are_one_set_in_code_help_and_reference() -> None:
    from typer.testing import CliRunner

    from synthprobe import app as app_package
    from synthprobe.cli import app

    in_code = {v for k, v in vars(app_package).items() if k.startswith("EXIT_")}
    table = {int(row[0]) for row in _table("docs/reference.md", "## Exit codes")}
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    listed = " ".join(help_text.split("Exit:", 1)[1].split())
    in_help = {int(n) for n in re.findall(r"(?:^|, )(\d+) ", listed)}
    assert in_code == table == in_help, (in_code, table, in_help)


def test_repository_cites_only_files_a_clone_has() -> None:
    # the product contract and the httpx notes live outside the repository: cite
    # docs/reference.md and docs/httpx.md, which a person cloning the project has
    outside = re.compile(r"SPEC\.md|HTTPX-NOTES\.md|SPEC ›|the SPEC's")
    for path in [ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md")]:
        assert not outside.search(path.read_text()), path
    for folder in ("src", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "test_docs.py":
                continue
            assert not outside.search(path.read_text()), path


def _demo_block() -> list[str]:
    text = (ROOT / "docs" / "demo.md").read_text()
    section = text.split("## Try it against the demo platform", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _free_base_port() -> int:
    import socket

    for _ in range(50):  # bounded: three free ports in a row
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base > 65000:
            continue
        taken = False
        for port in (base + 1, base + 2):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
        if not taken:
            return base
    pytest.skip("no three free ports in a row on 127.0.0.1")


@pytest.mark.slow
def test_demo_block_runs_as_written(tmp_path: Path) -> None:
    """docs/demo.md's block, each line run as written (8787 moved to a free port, whose
    variables the demo's own `try:` line gives), and each comment's claim checked."""
    import os
    import shlex
    import subprocess
    import time

    from .commands import probe_cmd

    lines = _demo_block()
    assert lines[0].startswith(".venv/bin/probe demo --serve &"), lines[0]
    port = _free_base_port()
    demo = subprocess.Popen(
        probe_cmd("demo", "--serve", "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stderr is not None
        hint = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not hint:
            line = demo.stderr.readline()
            if "try: " in line:
                hint = line.split("try: ", 1)[1].strip()
        assert hint.endswith("probe run probes.example.yaml"), hint
        env = dict(os.environ, COLUMNS="200")
        env.update(w.split("=", 1) for w in shlex.split(hint) if "=" in w)
        for line in lines[1:]:
            command, _, claim = line.partition("#")
            command = command.strip().replace("8787", str(port))
            argv = shlex.split(command)
            if argv[0] == ".venv/bin/probe":
                argv = [*probe_cmd(*argv[1:]), "--no-state", "-o", os.devnull]
                argv += ["--format", "json"]
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
            )
            if argv[0] == "curl":
                assert done.returncode == 0, (line, done.stderr)
                continue
            claim = claim.strip()
            summary = json.loads(done.stdout)
            failing = {f["probe"]: f["reason"] for f in summary["failed_probes"]}
            if claim.startswith("all "):
                assert done.returncode == 0 and not failing, (line, done.stdout)
                assert f"all {summary['probes']} pass" == claim
            else:
                names, _, reason = claim.partition(": ")
                expected = {n.strip(): reason for n in names.replace(" and ", ",").split(",")}
                assert failing == expected, (line, done.stdout)
    finally:
        demo.terminate()
        demo.wait(10)
        if demo.stderr is not None:
            demo.stderr.close()
