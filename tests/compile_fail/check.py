"""Compile-fail tests: each file here must fail to compile with the one readable message named on its
first line (`// expect: ...`), and with few errors, not pages of template noise.

usage: check.py COMPILER [FLAGS...] -- FILE..."""
import subprocess
import sys

MAX_ERRORS = 3


def main():
    split = sys.argv.index("--")
    command, files = sys.argv[1:split], sys.argv[split + 1:]
    failures = 0
    for path in files:
        with open(path) as f:
            expected = f.readline().removeprefix("// expect:").strip()
        result = subprocess.run([*command, "-fsyntax-only", path], capture_output=True, text=True)
        errors = [line for line in result.stderr.splitlines() if " error: " in line or line.startswith("error:")]
        ok = result.returncode != 0 and expected in result.stderr and len(errors) <= MAX_ERRORS
        print(f"{'ok' if ok else 'FAILED'}: {path}: {len(errors)} error(s)")
        if not ok:
            failures += 1
            print(f"  expected a failure mentioning: {expected}")
            print("\n".join("  " + line for line in errors[:10]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
