"""README's section "Testing your handlers" quotes tests/test_testing.cpp, a compiled unit test: every
code block there is in it, line for line (indentation aside). Needs no server."""
import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]


class ReadmeTestingSnippetsTest(unittest.TestCase):
    def test_every_snippet_is_in_the_compiled_test(self):
        readme = (ROOT / "README.md").read_text()
        self.assertIn("## Testing your handlers", readme)
        section = readme.split("## Testing your handlers", 1)[1].split("\n## ", 1)[0]
        source = [line.strip() for line in (ROOT / "tests" / "test_testing.cpp").read_text().splitlines()]
        blocks = re.findall(r"```cpp\n(.*?)```", section, re.S)
        self.assertGreaterEqual(len(blocks), 2)
        for block in blocks:
            lines = [line.strip() for line in block.splitlines()]
            found = any(source[i:i + len(lines)] == lines for i in range(len(source)))
            self.assertTrue(found, f"README snippet not found in tests/test_testing.cpp:\n{block}")


if __name__ == "__main__":
    unittest.main()
