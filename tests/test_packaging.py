"""Installable as documented: the wheel and sdist, the container image's recipe, the
Kubernetes example, and docs that never send anyone to the bare PyPI name.

The image itself is built by `make image` (minutes, root, podman and mmdebstrap), never
here: these tests check its recipe statically and run the same commands its build runs
against a wheel installed into a fresh venv (docs/install.md says why)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from synthprobe import __version__
from synthprobe.config import load_sources

from .commands import run_probe
from .realprograms import free_port, need, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
KUBERNETES = ROOT / "deploy" / "kubernetes"
# the oldest Kubernetes still supported by the big providers, and the newest the
# validator knows: a manifest must be valid for both
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"


# --- no doc installs the bare PyPI name ------------------------------------------------

# `synthprobe` on PyPI is not this project: anyone could register it, and the pods that
# would install it hold secrets
_INSTALL = re.compile(
    r"(?:\bpipx|\bpip3?|\buv\s+pip|\buv\s+tool|python3?\s+-m\s+pip)\s+install\b([^\n;&|]*)"
)
_BARE_NAME = re.compile(r"""^["']?synthprobe(?:\[[^\]]*\])?(?:[<>=!~]=?[^\s"']*)?["']?$""")


def bare_name_installs(text: str) -> list[str]:
    """Install commands in TEXT whose package is the bare name `synthprobe`."""
    found = []
    for match in _INSTALL.finditer(text):
        args = [a for a in match.group(1).split() if not a.startswith("-")]
        if any(_BARE_NAME.match(a) for a in args):
            found.append(match.group(0).strip())
    return found


@pytest.mark.parametrize(
    ("line", "bare"),
    [
        pytest.param("pip install synthprobe", True, id="pip"),
        pytest.param("- run: pip install --quiet synthprobe &&", True, id="pip-quiet-in-yaml"),
        pytest.param("pipx install 'synthprobe==0.1.0'", True, id="pipx-pinned"),
        pytest.param("python3 -m pip install synthprobe[test]", True, id="extras"),
        pytest.param("uv tool install synthprobe", True, id="uv-tool"),
        pytest.param("pipx install ./dist/synthprobe-0.1.0-py3-none-any.whl", False, id="wheel"),
        pytest.param(
            "pipx install git+https://git.example.invalid/synthprobe.git", False, id="git"
        ),
        pytest.param("pip install -e '.[test]'", False, id="editable-checkout"),
        pytest.param("pip install build twine", False, id="other-packages"),
    ],
)
def test_bare_name_check_tells_the_bare_name_from_real_installs(line: str, bare: bool) -> None:
    assert bool(bare_name_installs(line)) is bare


def _user_facing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Containerfile", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())
    return files


@pytest.mark.parametrize(
    "path", _user_facing_files(), ids=[str(p.relative_to(ROOT)) for p in _user_facing_files()]
)
def test_no_doc_installs_the_bare_pypi_name(path: Path) -> None:
    assert bare_name_installs(path.read_text()) == [], path


# --- the wheel and the sdist ----------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel as `python -m build` makes them. Without build isolation:
    the build backend comes from this venv (the test extra), so no index is needed."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _wheel(dist: Path) -> Path:
    return dist / f"synthprobe-{__version__}-py3-none-any.whl"


@pytest.mark.slow
def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert [f.name for f in files] == [
        f"synthprobe-{__version__}-py3-none-any.whl",
        f"synthprobe-{__version__}.tar.gz",
    ]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout


@pytest.mark.slow
def test_wheel_holds_the_package_its_data_and_the_entry_point(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = set(wheel.namelist())
        info = f"synthprobe-{__version__}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()
    for needed in (
        "synthprobe/__init__.py",
        "synthprobe/cli.py",
        "synthprobe/demo.yaml",
        "synthprobe/py.typed",
        "synthprobe/demo/throwaway-cert.pem",
        "synthprobe/demo/throwaway-key.pem",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    # every file of the source package is in the wheel (bytecode caches aside)
    source = {
        str(p.relative_to(ROOT / "src"))
        for p in (ROOT / "src" / "synthprobe").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert source - names == set()
    assert re.search(r"^probe = synthprobe\.cli:main$", entry_points, re.M), entry_points
    assert "Requires-Python: >=3.11" in metadata


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed in it (no editable checkout, no src/).

    The dependencies come from this venv's site-packages through a .pth line: a plain
    directory line adds the directory but runs none of its own .pth files, so the editable
    install of the checkout in this venv stays out and `synthprobe` can only be the
    wheel's. That keeps the test offline and fast; `make image` installs the same wheel
    with its real dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install"),
            *("--quiet", "--no-deps", "--no-index", str(_wheel(dist))),
        ],
        check=True,
        timeout=120,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "probe"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=venv,
        timeout=120,
        env={**env, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_installed_wheel_is_the_one_that_runs(installed: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import synthprobe, importlib.resources as r; print(synthprobe.__file__); "
            "print(r.files('synthprobe').joinpath('demo.yaml').is_file())",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=installed,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(installed), f"synthprobe imported from {where[0]}"
    assert where[1] == "True"


@pytest.mark.slow
def test_installed_wheel_runs_version_validate_and_demo(installed: Path) -> None:
    version = _run(installed, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"synthprobe {__version__}")
    config = 'version: 1\nprobes:\n  - {name: self, kind: http, url: "http://127.0.0.1:9/"}\n'
    valid = _run(installed, "validate", "-", stdin=config)
    assert valid.returncode == 0, valid.stderr
    assert "1 probes" in valid.stdout
    invalid = _run(installed, "validate", "-", stdin="version: 1\nprobes: [{name: x}]\n")
    assert invalid.returncode == 2
    # the demo needs the wheel's data files (demo.yaml, the throwaway certificate); it
    # exits 1 by design: its platform has broken parts
    demo = _run(installed, "demo", "--format", "json")
    assert demo.returncode == 1, demo.stderr
    summary = json.loads(demo.stdout)
    assert summary["probes"] > 10 and 0 < summary["passed"] < summary["probes"], summary


# --- the Containerfile ----------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def containerfile_problems(text: str) -> list[str]:
    """What keeps TEXT from being the image docs/install.md promises."""
    steps = _instructions(text)
    problems = []
    if not steps or steps[0][0] != "ARG" or not steps[0][1].startswith("BASE="):
        problems.append("the first instruction must be ARG BASE=<default base image>")
    froms = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    if not froms or any(not steps[i][1].startswith("${BASE}") for i in froms):
        problems.append("every stage must start FROM ${BASE}")
    final = steps[froms[-1] :] if froms else steps
    users = [args for word, args in final if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage must end as a non-root USER")
    entry = [args for word, args in final if word == "ENTRYPOINT"]
    try:
        argv = json.loads(entry[-1]) if entry else []
    except json.JSONDecodeError:
        argv = []
    if not argv or Path(argv[0]).name != "probe":
        problems.append('ENTRYPOINT must be the exec form ["/.../probe"]')
    run_time = " ".join(args for word, args in final if word in ("ENTRYPOINT", "CMD"))
    if re.search(r"\b(pip|pipx|curl|wget|apt-get)\b", run_time):
        problems.append("ENTRYPOINT/CMD fetch or install something at run time")
    if any(word == "RUN" and re.search(r"\bpip3?\s+install\b", a) for word, a in final):
        problems.append("the final stage installs with pip: install in the first stage")
    if any(word == "RUN" and re.search(r"\b(curl|wget)\b", args) for word, args in steps):
        problems.append("the build downloads with curl/wget")
    if "ARG PIP_EXTRA_ARGS=--no-index" not in text:
        problems.append("the build must fetch nothing by default (PIP_EXTRA_ARGS=--no-index)")
    return problems


def test_containerfile_is_the_promised_image() -> None:
    assert containerfile_problems((ROOT / "Containerfile").read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        pytest.param("ARG BASE=", "ARG IMAGE=", "ARG BASE", id="no-base-arg"),
        pytest.param("FROM ${BASE}\n", "FROM python:3.11-slim\n", "FROM ${BASE}", id="fixed-base"),
        pytest.param("USER 10001:10001", "USER root", "non-root", id="root-user"),
        pytest.param("USER 10001:10001\n", "", "non-root", id="no-user"),
        pytest.param(
            'ENTRYPOINT ["/opt/synthprobe/bin/probe"]',
            'ENTRYPOINT ["sh"]',
            "ENTRYPOINT",
            id="not-probe",
        ),
        pytest.param(
            'CMD ["--help"]',
            'CMD ["sh", "-c", "pip install synthprobe"]',
            "run time",
            id="pip-at-run-time",
        ),
        pytest.param(
            "WORKDIR /home/probe",
            "RUN pip install synthprobe\nWORKDIR /home/probe",
            "final stage installs",
            id="pip-in-final-stage",
        ),
        pytest.param(
            "ARG PIP_EXTRA_ARGS=--no-index",
            "ARG PIP_EXTRA_ARGS=",
            "fetch nothing",
            id="index-by-default",
        ),
    ],
)
def test_containerfile_check_finds_each_broken_promise(old: str, new: str, problem: str) -> None:
    text = (ROOT / "Containerfile").read_text()
    assert old in text
    problems = containerfile_problems(text.replace(old, new))
    assert any(problem in p for p in problems), problems


# --- the Kubernetes example -----------------------------------------------------------


def _manifests(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in paths:
        texts = BLOCK.findall(path.read_text()) if path.suffix == ".md" else [path.read_text()]
        for text in texts:
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and "apiVersion" in doc:
                    out.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


DEPLOYED = _manifests(sorted(KUBERNETES.glob("*.yaml")))
IN_DOCS = _manifests([ROOT / "docs" / "scale.md"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("where", "manifest"), DEPLOYED + IN_DOCS, ids=[w for w, _ in DEPLOYED + IN_DOCS]
)
def test_manifest_is_valid_kubernetes(where: str, manifest: dict[str, Any], version: str) -> None:
    # the API's own OpenAPI schemas, strict: a misspelt or misplaced field is an error
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(f"{where} is not valid Kubernetes {version}: {path}: {e.message}")


def test_validator_rejects_a_misplaced_field() -> None:
    cron = copy.deepcopy(_by_kind(DEPLOYED, "CronJob"))
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cron, KUBERNETES_VERSIONS[0], strict=True)


def _by_kind(manifests: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    return next(m for _, m in manifests if m["kind"] == kind)


def test_docs_show_the_deployed_manifests() -> None:
    deployed = {(m["kind"], m["metadata"]["name"]): m for _, m in DEPLOYED}
    assert {"ConfigMap", "CronJob"} <= {m["kind"] for _, m in IN_DOCS}
    for where, manifest in IN_DOCS:
        key = (manifest["kind"], manifest["metadata"]["name"])
        assert manifest == deployed.get(key), f"{where} differs from deploy/kubernetes/"


def cronjob_problems(cron: dict[str, Any]) -> list[str]:
    """What keeps a CronJob from being the one docs/scale.md promises."""
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    script = " ".join([*container.get("command", []), *container.get("args", [])])
    problems = []
    if "synthprobe" not in container["image"].rsplit("/", 1)[-1]:
        problems.append(f"image {container['image']} is not synthprobe's")
    if re.search(r"\b(pip3?|pipx|curl|wget|apt-get)\s+install\b", script):
        problems.append("installs at run time")
    if any("hostPath" in v for v in pod.get("volumes", [])):
        problems.append("hostPath volume: files are left behind when the pod moves")
    claims = any("persistentVolumeClaim" in v for v in pod.get("volumes", []))
    if "--no-state" not in script and not claims:
        problems.append("the state file dies with the pod: --no-state or a PersistentVolumeClaim")
    if "--location" not in script:
        problems.append("no --location")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append("runAsNonRoot is not set")
    if cron["spec"].get("concurrencyPolicy") != "Forbid":
        problems.append("overlapping runs could push out of order: concurrencyPolicy Forbid")
    return problems


def test_cronjob_is_the_promised_one() -> None:
    cron = _by_kind(DEPLOYED, "CronJob")
    assert cronjob_problems(cron) == []
    config = _by_kind(DEPLOYED, "ConfigMap")["data"]["probes.yaml"]
    loaded = load_sources([("configmap", config.encode())], env={})
    assert [p.name for p in loaded.probes] == ["feed-home", "upload-avatar"]


def _pod(cron: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(
            lambda c: _pod(c)["containers"][0].update(image="python:3.11-slim"),
            "not synthprobe's",
            id="python-image",
        ),
        pytest.param(
            lambda c: _pod(c)["containers"][0].update(
                args=["pip install --quiet synthprobe && probe run x.yaml --location a --no-state"]
            ),
            "installs at run time",
            id="pip-install",
        ),
        pytest.param(
            lambda c: _pod(c)["volumes"].append(
                {"name": "metrics", "hostPath": {"path": "/var/lib/prometheus/node-exporter"}}
            ),
            "hostPath",
            id="hostpath",
        ),
        pytest.param(
            lambda c: _pod(c)["containers"][0].update(
                args=[_pod(c)["containers"][0]["args"][0].replace("--no-state", "")]
            ),
            "state file",
            id="state-lost",
        ),
        pytest.param(lambda c: c["spec"].update(concurrencyPolicy="Allow"), "Forbid", id="overlap"),
    ],
)
def test_cronjob_check_finds_each_broken_promise(change: Any, problem: str) -> None:
    cron = copy.deepcopy(_by_kind(DEPLOYED, "CronJob"))
    change(cron)
    assert any(problem in p for p in cronjob_problems(cron)), cronjob_problems(cron)


# --- the CronJob's script, run for real against a Pushgateway --------------------------


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    program = need(PUSHGATEWAY if Path(PUSHGATEWAY).exists() else None, "prometheus-pushgateway")
    port = free_port()
    log = (tmp_path_factory.mktemp("pushgateway") / "log").open("wb")
    proc = subprocess.Popen(
        [program, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log
    )
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/-/ready") is not None, 20, "pushgateway")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def _delete_group(gateway: str, location: str) -> None:
    request = urllib.request.Request(
        f"{gateway}/metrics/job/synthprobe/location/{location}", method="DELETE"
    )
    urllib.request.urlopen(request, timeout=5).close()


def _run_cronjob(
    tmp_path: Path, env: dict[str, str], config: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CronJob's container command as the pod runs it: its volumes are directories
    of TMP_PATH, `probe` and `python` those of this venv (the image's are the same
    wheel), its env with ENV on top."""
    cron = _by_kind(DEPLOYED, "CronJob")
    container = _pod(cron)["containers"][0]
    script = container["args"][0]
    mounts = {m["mountPath"]: tmp_path / m["name"] for m in container["volumeMounts"]}
    for local in mounts.values():
        local.mkdir(exist_ok=True)
    # one pass, longest first: a mount path inside TMP_PATH must not be replaced again
    pattern = "|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True))
    script = re.sub(rf"(?<![\w/])({pattern})(?=/)", lambda m: str(mounts[m[1]]), script)
    (tmp_path / "config" / "probes.yaml").write_text(
        config if config is not None else _by_kind(DEPLOYED, "ConfigMap")["data"]["probes.yaml"]
    )
    base_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [*container["command"], script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **base_env, "PATH": path, **env},
    )


def _pushed(gateway: str, location: str) -> dict[str, str]:
    """`series -> value` of synthprobe_up in LOCATION's group at the Pushgateway."""
    text = _get(f"{gateway}/metrics") or ""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^synthprobe_up(\{[^}]*\}) (\S+)$", text, re.M)
        if f'location="{location}"' in m.group(1)
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "ok_codes", "job_exit", "up"),
    [
        pytest.param("platform", "0 1 3", 0, "1", id="all-pass"),
        pytest.param("refused", "0 1 3", 0, "0", id="probe-fails-job-succeeds"),
        pytest.param("refused", "0", 1, "0", id="probe-fails-job-fails-when-asked"),
    ],
)
def test_cronjob_script_pushes_and_exits_as_documented(
    pushgateway: str,
    platform_url: str,
    refused_url: str,
    tmp_path: Path,
    target: str,
    ok_codes: str,
    job_exit: int,
    up: str,
) -> None:
    location = f"test-{tmp_path.name}"
    base_url = platform_url if target == "platform" else refused_url
    done = _run_cronjob(
        tmp_path,
        {
            "LOCATION": location,
            "PUSHGATEWAY_URL": pushgateway,
            "OK_EXIT_CODES": ok_codes,
            "BASE_URL": base_url,
        },
    )
    assert done.returncode == job_exit, done.stderr
    try:
        pushed = _pushed(pushgateway, location)
        assert len(pushed) == 2 and set(pushed.values()) == {up}, pushed
        assert all('job="synthprobe"' in series for series in pushed), pushed
    finally:
        _delete_group(pushgateway, location)


@pytest.mark.slow
def test_cronjob_push_replaces_the_locations_group(
    pushgateway: str, refused_url: str, tmp_path: Path
) -> None:
    # a probe taken out of the config leaves no series behind at the Pushgateway
    location = f"test-{tmp_path.name}"
    env = {"LOCATION": location, "PUSHGATEWAY_URL": pushgateway, "BASE_URL": refused_url}
    assert _run_cronjob(tmp_path, env).returncode == 0
    assert len(_pushed(pushgateway, location)) == 2
    one = f"version: 1\nprobes:\n  - {{name: only, kind: http, url: '{refused_url}/'}}\n"
    try:
        assert _run_cronjob(tmp_path, env, config=one).returncode == 0
        assert [s for s in _pushed(pushgateway, location)] == [
            f'{{instance="",job="synthprobe",kind="http",location="{location}",probe="only"}}'
        ]
    finally:
        _delete_group(pushgateway, location)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "job_exit", "message"),
    [
        pytest.param("config-error", 2, "probes[0]", id="config-error-fails-job"),
        pytest.param("gateway-down", 5, "push to", id="push-failure-fails-job"),
    ],
)
def test_cronjob_fails_when_the_run_itself_went_wrong(
    pushgateway: str, refused_url: str, tmp_path: Path, case: str, job_exit: int, message: str
) -> None:
    location = f"test-{tmp_path.name}"
    gateway = refused_url if case == "gateway-down" else pushgateway
    config = "version: 1\nprobes: [{name: x, kind: nosuchkind, url: 'http://127.0.0.1:9/'}]\n"
    done = _run_cronjob(
        tmp_path,
        {"LOCATION": location, "PUSHGATEWAY_URL": gateway, "BASE_URL": refused_url},
        config=config if case == "config-error" else None,
    )
    assert done.returncode == job_exit, done.stderr
    assert message in done.stderr
    assert _pushed(pushgateway, location) == {}


def test_install_doc_names_every_make_target_it_relies_on() -> None:
    doc = (ROOT / "docs" / "install.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)", doc)):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make {target}"


# --- docs/ci.md and docs/scale.md ---------------------------------------------------------


def test_ci_doc_lists_every_exit_code_of_probe_run() -> None:
    helped = run_probe("run", "--help")
    codes = set(re.findall(r"\b(\d+) [a-z]", helped.stdout.split("Exit:")[1]))
    assert {"0", "1", "2", "3", "4", "130"} <= codes, helped.stdout
    table = set(re.findall(r"^\| (\d+) \|", (ROOT / "docs" / "ci.md").read_text(), re.M))
    assert codes == table


def test_scale_doc_names_debians_textfile_directory_and_flag() -> None:
    text = (ROOT / "docs" / "scale.md").read_text()
    assert "/var/lib/prometheus/node-exporter" in text
    assert "--collector.textfile.directory" in text
    assert "hostPath" not in "".join(BLOCK.findall(text))


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCK.findall((ROOT / "docs" / "scale.md").read_text()) if "receivers:" in b],
)
def test_scale_doc_alertmanager_config_passes_amtool(block: str, tmp_path: Path) -> None:
    amtool = need(shutil.which("amtool"), "prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(block)
    checked = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    receivers = yaml.safe_load(block)["receivers"]
    for receiver in receivers:
        for kind, configs in receiver.items():
            if kind.endswith("_configs"):
                assert all(c.get("send_resolved") is True for c in configs), receiver


def test_scale_doc_lists_every_shipped_alert() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "synthprobe.rules.yml").read_text())
    shipped = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    text = (ROOT / "docs" / "scale.md").read_text()
    assert set(re.findall(r"^\| `(Synthprobe\w+)` \|", text, re.M)) == shipped
