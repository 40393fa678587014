"""Run ``keeldb chaos`` (its default fault mix, a small fixed-seed run) and the project's own
crash and model tests against each mutant, and print what caught what.

    python -m tests.mutants [--only NAMES] [--skip-chaos] [--skip-tests] [--control]
                            [--rows 20000] [--count 6] [--seed 1] [--out DIR]

A mutant is *caught* by chaos when the run reports any violation (a target that does not
recover is one), and by the tests when any of its tests fails. The goal: chaos catches every
mutant not marked ``blind`` or ``equivalent`` in ``catalog.py``, and the tests every one not
marked ``equivalent``. The exit code is 1 if a mutant misses the goal, 2 if a mutant does not
apply (its code moved) or a check could not run at all. ``--control`` first runs the same
checks against an unmutated copy, which must pass them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.mutants.apply import MutantDrift, env, mutated_copy
from tests.mutants.catalog import MUTANTS, Mutant, by_name

CHAOS_TIMEOUT = 3600
TESTS_TIMEOUT = 3600


@dataclass
class Outcome:
    name: str
    bug: str
    chaos: str = "not run"  # "caught: N violations (first: ...)", "missed: 0 violations", "error: ..."
    chaos_caught: bool | None = None
    tests: str = "not run"  # "caught by <test id>", "missed", "error: ..."
    tests_caught: bool | None = None
    expected: str = ""  # blind / equivalent notes
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def meets_goal(self, m: Mutant | None) -> bool:
        if m is None:  # the control: nothing may be caught
            return self.chaos_caught is not True and self.tests_caught is not True
        if m.equivalent:
            return True
        chaos_ok = self.chaos_caught is not False or bool(m.blind)
        return chaos_ok and self.tests_caught is not False


def check_import(root: Path) -> None:
    """Refuse to run if a child would not import the mutated copy."""
    out = subprocess.run(
        [sys.executable, "-c", "import keeldb; print(keeldb.__file__)"],
        cwd=root, env=env(root), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    got = out.stdout.strip()
    if not got.startswith(str(root / "src")):
        raise SystemExit(f"a child imports keeldb from {got or out.stderr[-500:]!r}, not the copy at {root}")


def run_chaos(root: Path, m: Mutant | None, out: Path, args: argparse.Namespace) -> tuple[bool | None, str]:
    cmd = [
        sys.executable, "-m", "keeldb.cli", "chaos", "--rows", str(args.rows), "--count", str(args.count),
        "--seed", str(args.seed), "--out", str(out), *(m.chaos if m else ()),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, cwd=root, env=env(root), capture_output=True, text=True, timeout=CHAOS_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"error: no result in {CHAOS_TIMEOUT}s"
    (out / "chaos.log").parent.mkdir(parents=True, exist_ok=True)
    (out / "chaos.log").write_text(proc.stdout + proc.stderr)
    hist = out / "history.json"
    if not hist.exists():
        return None, f"error: exit {proc.returncode}, no history: {(proc.stderr or proc.stdout)[-400:]}"
    violations = json.loads(hist.read_text()).get("violations", [])
    if not violations:
        return False, "missed: 0 violations"
    unrecovered = sum("did not recover" in v for v in violations)
    first = violations[0][:220].replace("|", "/")
    what = f"{len(violations)} violations" + (f" ({unrecovered} did not recover)" if unrecovered else "")
    return True, f"caught: {what}; first: {first}"


FAILED = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


def run_tests(root: Path, m: Mutant | None, out: Path) -> tuple[bool | None, str]:
    tests = m.tests if m else tuple(sorted({t for x in MUTANTS for t in x.tests}))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env(root), capture_output=True, text=True, timeout=TESTS_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"error: no result in {TESTS_TIMEOUT}s"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tests.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode == 0:
        return False, "missed"
    hit = FAILED.search(proc.stdout)
    # 1: tests failed; 2 with a failure named: xdist's -x interrupts the other worker.
    if proc.returncode == 1 or (proc.returncode == 2 and hit):
        return True, f"caught by {hit.group(2) if hit else '(see tests.log)'}"
    return None, f"error: pytest exit {proc.returncode}: {proc.stdout[-300:]}"


def run_one(m: Mutant | None, args: argparse.Namespace) -> Outcome:
    name = m.name if m else "(no mutant: control)"
    o = Outcome(name, m.bug if m else "the unmutated code")
    if m is not None:
        o.expected = "equivalent" if m.equivalent else ("chaos blind" if m.blind else "")
    out = Path(args.out) / (m.name if m else "control")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"keeldb-mutant-{m.name if m else 'control'}-") as tmp:
        root = mutated_copy(m, Path(tmp))
        check_import(root)
        if not args.skip_chaos:
            o.chaos_caught, o.chaos = run_chaos(root, m, out / "chaos", args)
            print(f"  chaos: {o.chaos}", flush=True)
        if not args.skip_tests:
            o.tests_caught, o.tests = run_tests(root, m, out)
            print(f"  tests: {o.tests}", flush=True)
    o.seconds = round(time.monotonic() - t0, 1)
    return o


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| mutant | planted bug | keeldb chaos (default mix) | own crash/model tests | expected |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(f"| `{o.name}` | {o.bug} | {o.chaos} | {o.tests} | {o.expected} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--only", default="", help="comma list of mutant names (default: all)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--skip-chaos", action="store_true")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--control", action="store_true", help="first run the checks on an unmutated copy")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=f"keeldb-mutants-{time.strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)
    mutants = by_name(args.only)
    if args.list:
        for m in mutants:
            note = f" [equivalent: {m.equivalent}]" if m.equivalent else (f" [chaos blind: {m.blind}]" if m.blind else "")
            print(f"{m.name}: {m.bug}{note}")
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    failed = error = False
    for m in ([None] if args.control else []) + mutants:
        print(f"== {m.name if m else 'control'}", flush=True)
        try:
            o = run_one(m, args)
        except MutantDrift as e:
            print(f"MUTANT DOES NOT APPLY: {e}", file=sys.stderr)
            error = True
            outcomes.append(Outcome(m.name if m else "control", str(e).splitlines()[0], "error: does not apply", None))
            continue
        outcomes.append(o)
        error |= o.chaos.startswith("error") or o.tests.startswith("error")
        failed |= not o.meets_goal(m)
        Path(args.out, "mutants.json").write_text(json.dumps([asdict(x) for x in outcomes], indent=1))
    report = table(outcomes)
    Path(args.out, "mutants.md").write_text(report + "\n")
    print(report)
    print(f"(written to {args.out}/mutants.md and mutants.json)")
    return 2 if error else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
