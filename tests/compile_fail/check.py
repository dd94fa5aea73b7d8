"""Compile-fail tests: each file here must fail to compile with the one readable message named on its
first line (`// expect: ...`), and with few errors, not pages of template noise. Further `// expect:`
lines right after the first name more text the compiler's output must hold (its notes included).

usage: check.py COMPILER [FLAGS...] -- FILE..."""
import subprocess
import sys

MAX_ERRORS = 3


def expectations(path):
    """The texts of the `// expect:` lines at the top of a file."""
    found = []
    with open(path) as f:
        for line in f:
            if not line.startswith("// expect:"):
                break
            found.append(line.removeprefix("// expect:").strip())
    return found


def main():
    split = sys.argv.index("--")
    command, files = sys.argv[1:split], sys.argv[split + 1:]
    failures = 0
    for path in files:
        expected = expectations(path)
        result = subprocess.run([*command, "-fsyntax-only", path], capture_output=True, text=True)
        errors = [line for line in result.stderr.splitlines() if " error: " in line or line.startswith("error:")]
        missing = [text for text in expected if text not in result.stderr]
        ok = result.returncode != 0 and expected and not missing and len(errors) <= MAX_ERRORS
        print(f"{'ok' if ok else 'FAILED'}: {path}: {len(errors)} error(s)")
        if not ok:
            failures += 1
            print(f"  expected a failure mentioning: {' / '.join(missing or expected)}")
            print("\n".join("  " + line for line in errors[:10]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
