"""The kind registry: every kind declared once, complete and consistent."""

from __future__ import annotations

import pytest

from synthprobe.probers import KINDS, prober_for
from synthprobe.steps import Step

NAMES = sorted(KINDS)


@pytest.mark.parametrize("kind", NAMES)
def test_kind_declares_a_prober_that_loads(kind: str) -> None:
    prober = prober_for(kind)
    assert callable(prober.prepare) and callable(prober.probe)
    assert prober_for(kind) is prober  # built once


@pytest.mark.parametrize("kind", NAMES)
def test_kind_info_is_consistent(kind: str) -> None:
    info = KINDS[kind]
    assert info.name == kind
    assert info.schemes and all(s.isalpha() for s in info.schemes)
    assert (info.block is None) == (info.parse_block is None)
    names = [s.name for s in info.steps]
    assert len(names) == len(set(names))
    # a kind's step must not shadow a shared one: the timeline keys them by name
    assert not set(names) & {s.value for s in Step}


def test_blocks_belong_to_one_kind_each() -> None:
    blocks = [i.block for i in KINDS.values() if i.block]
    assert len(blocks) == len(set(blocks))


def test_the_four_product_kinds_and_http_are_registered() -> None:
    assert {"http", "feed", "upload", "live", "messaging"} <= set(KINDS)


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    # the registry, the config and the kinds import one another: whichever a program
    # (or a test) imports first must work, not only the order `probe run` happens to use
    import pkgutil
    import subprocess
    import sys

    import synthprobe

    modules = [m.name for m in pkgutil.walk_packages(synthprobe.__path__, "synthprobe.")]
    assert len(modules) > 40
    running = [
        (name, subprocess.Popen([sys.executable, "-c", f"import {name}"], stderr=subprocess.PIPE))
        for name in modules
        if name != "synthprobe.__main__"  # runs the CLI
    ]
    broken = {}
    for name, proc in running:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            broken[name] = err.decode().strip().splitlines()[-1]
    assert broken == {}
