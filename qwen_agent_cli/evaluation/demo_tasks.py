"""The demo's eight bug-fix tasks (Python, Bash, awk, sed, C), each a tiny repository, hidden
tests the model never sees, and a scripted model per arm. The arms differ a little on purpose,
so the report has something to compare; scripted turns say nothing about a real model.

Plain data; imports nothing from qac.
"""

from __future__ import annotations

from typing import Any

PY_TEST = "python3 -m unittest -q"
SH_TEST = "sh run_tests.sh"


def call(thinking: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"thinking": thinking, "tool_calls": [{"name": name, "arguments": arguments}]}


def answer(thinking: str, text: str) -> dict[str, Any]:
    return {"thinking": thinking, "text": text}


def fix(path: str, old: str, new: str, why: str, *, reread: bool = False) -> list[dict[str, Any]]:
    """Read, edit, test, answer; `reread` adds the second look a model takes when its earlier
    reasoning was dropped (the no-preserve arm)."""
    turns = [call(f"The tests fail. Let me read {path} first.", "read_file", path=path)]
    if reread:
        turns.append(
            call(
                f"Before editing I need to see {path} again to find the faulty line.",
                "read_file",
                path=path,
            )
        )
    turns += [
        call(f"{why} I'll change exactly that line.", "edit_file", path=path, old=old, new=new),
        call("Edited; now I run the tests as planned.", "run_tests"),
        answer("The tests pass.", f"Fixed {path}: {why}"),
    ]
    return turns


def claim(path: str, old: str, new: str, why: str) -> list[dict[str, Any]]:
    """An edit that does not fix it, and a confident answer anyway."""
    return [
        call(f"Let me look at {path}.", "read_file", path=path),
        call(f"{why}", "edit_file", path=path, old=old, new=new),
        answer("That should be it.", f"Fixed {path}."),
    ]


TASKS: list[dict[str, Any]] = [
    {
        "id": "py-average",
        "prompt": "average([1, 2, 3, 4]) returns 2 instead of 2.5.",
        "test_cmd": PY_TEST,
        "files": {
            "calc.py": "def average(values):\n    return sum(values) // len(values)\n",
            "test_calc.py": "import unittest\n\nfrom calc import average\n\n\n"
            "class CalcTest(unittest.TestCase):\n    def test_average(self):\n"
            "        self.assertEqual(average([1, 2, 3, 4]), 2.5)\n",
        },
        "hidden": {
            "test_hidden.py": "import unittest\n\nfrom calc import average\n\n\n"
            "class Hidden(unittest.TestCase):\n    def test_more(self):\n"
            "        self.assertEqual(average([1, 2]), 1.5)\n"
            "        self.assertEqual(average([3]), 3)\n",
        },
        "scripts": {
            "preserve": fix("calc.py", "// len", "/ len", "average floors: `//` must be `/`."),
            "no-preserve": fix(
                "calc.py", "// len", "/ len", "average floors: `//` must be `/`.", reread=True
            ),
        },
    },
    {
        "id": "py-slug",
        "prompt": "slugify('Hello World') gives 'Hello-World'; slugs must be lower case.",
        "test_cmd": PY_TEST,
        "files": {
            "slug.py": "def slugify(text):\n    return '-'.join(text.split())\n",
            "test_slug.py": "import unittest\n\nfrom slug import slugify\n\n\n"
            "class SlugTest(unittest.TestCase):\n    def test_lower(self):\n"
            "        self.assertEqual(slugify('Hello World'), 'hello-world')\n",
        },
        "hidden": {
            "test_hidden.py": "import unittest\n\nfrom slug import slugify\n\n\n"
            "class Hidden(unittest.TestCase):\n    def test_spaces(self):\n"
            "        self.assertEqual(slugify('  A  Big Cat '), 'a-big-cat')\n",
        },
        "scripts": {
            "preserve": fix(
                "slug.py", "text.split()", "text.lower().split()", "slugify never lowercases."
            ),
            "no-preserve": fix(
                "slug.py", "text.split()", "text.lower().split()", "slugify never lowercases."
            ),
        },
    },
    {
        "id": "py-clamp",
        "prompt": "clamp(15, 0, 10) returns 15; it must stay within [lo, hi].",
        "test_cmd": PY_TEST,
        "files": {
            "clamp.py": "def clamp(x, lo, hi):\n    return max(lo, x)\n",
            "test_clamp.py": "import unittest\n\nfrom clamp import clamp\n\n\n"
            "class ClampTest(unittest.TestCase):\n    def test_high(self):\n"
            "        self.assertEqual(clamp(15, 0, 10), 10)\n",
        },
        "hidden": {
            "test_hidden.py": "import unittest\n\nfrom clamp import clamp\n\n\n"
            "class Hidden(unittest.TestCase):\n    def test_low(self):\n"
            "        self.assertEqual(clamp(-5, 0, 10), 0)\n"
            "        self.assertEqual(clamp(5, 0, 10), 5)\n",
        },
        "scripts": {
            "preserve": fix(
                "clamp.py", "max(lo, x)", "max(lo, min(x, hi))", "clamp ignores the upper bound."
            ),
            # Passes the visible test and drops the lower bound: the hidden tests reject it.
            "no-preserve": fix(
                "clamp.py", "max(lo, x)", "min(x, hi)", "clamp must respect hi.", reread=True
            ),
        },
    },
    {
        "id": "bash-greet",
        "prompt": "`./greet.sh Ada` prints 'Hello, World!' instead of 'Hello, Ada!'.",
        "test_cmd": SH_TEST,
        "files": {
            "greet.sh": '#!/bin/bash\nname="${2:-World}"\necho "Hello, $name!"\n',
            "run_tests.sh": 'set -e\nout=$(bash greet.sh Ada)\n[ "$out" = "Hello, Ada!" ] '
            '|| { echo "FAIL: got $out"; exit 1; }\necho ok\n',
        },
        "hidden": {
            "hidden_tests.sh": 'set -e\n[ "$(bash greet.sh)" = "Hello, World!" ]\n'
            '[ "$(bash greet.sh Bo)" = "Hello, Bo!" ]\necho ok\n',
        },
        "hidden_test_cmd": "sh run_tests.sh && sh hidden_tests.sh",
        "scripts": {
            "preserve": fix("greet.sh", "${2:-World}", "${1:-World}", "The name is $1, not $2."),
            "no-preserve": fix(
                "greet.sh", "${2:-World}", "${1:-World}", "The name is $1, not $2.", reread=True
            ),
        },
    },
    {
        "id": "awk-total",
        "prompt": "total.awk should sum the second column of a CSV file; it prints 0.",
        "test_cmd": SH_TEST,
        "files": {
            "total.awk": "{ sum += $2 }\nEND { print sum + 0 }\n",
            "sales.csv": "apples,3\npears,4\n",
            "run_tests.sh": 'out=$(awk -f total.awk sales.csv)\n[ "$out" = 7 ] '
            '|| { echo "FAIL: got $out, want 7"; exit 1; }\necho ok\n',
        },
        "hidden": {
            "hidden.csv": "a,1\nb,2\nc,39\n",
            "hidden_tests.sh": '[ "$(awk -f total.awk hidden.csv)" = 42 ] && echo ok\n',
        },
        "hidden_test_cmd": "sh run_tests.sh && sh hidden_tests.sh",
        "scripts": {
            "preserve": fix(
                "total.awk",
                "{ sum += $2 }",
                'BEGIN { FS = "," }\n{ sum += $2 }',
                "awk splits on blanks; the file is comma separated.",
            ),
            "no-preserve": fix(
                "total.awk",
                "{ sum += $2 }",
                'BEGIN { FS = "," }\n{ sum += $2 }',
                "awk splits on blanks; the file is comma separated.",
                reread=True,
            ),
        },
    },
    {
        "id": "c-max",
        "prompt": "max_of() in max.c misses the last element of the array.",
        "test_cmd": SH_TEST,
        "files": {
            "max.c": "int max_of(const int *v, int n) {\n    int best = v[0];\n"
            "    for (int i = 1; i < n - 1; i++)\n        if (v[i] > best) best = v[i];\n"
            "    return best;\n}\n",
            "test_max.c": "#include <stdio.h>\nint max_of(const int *v, int n);\n"
            "int main(void) {\n    int v[] = {1, 5, 9};\n"
            '    if (max_of(v, 3) != 9) { printf("FAIL\\n"); return 1; }\n'
            '    printf("ok\\n");\n    return 0;\n}\n',
            "run_tests.sh": "set -e\ncc -o test_max max.c test_max.c\n./test_max\n",
            ".gitignore": "test_max\nhidden_max\n",
        },
        "hidden": {
            "hidden_max.c": "int max_of(const int *v, int n);\nint main(void) {\n"
            "    int a[] = {7}, b[] = {3, 2, 8, 8};\n"
            "    return !(max_of(a, 1) == 7 && max_of(b, 4) == 8);\n}\n",
        },
        "hidden_test_cmd": "sh run_tests.sh && cc -o hidden_max max.c hidden_max.c && ./hidden_max",
        "scripts": {
            "preserve": fix("max.c", "i < n - 1", "i < n", "The loop stops one element early."),
            # Changes the wrong bound and gives up on checking: not fixed.
            "no-preserve": claim(
                "max.c", "int i = 1", "int i = 0", "Maybe the loop should start at 0."
            ),
        },
    },
    {
        "id": "sed-trim",
        "prompt": "trim.sed should strip leading and trailing blanks; leading ones stay.",
        "test_cmd": SH_TEST,
        "files": {
            "trim.sed": "s/[[:space:]]*$//\n",
            "run_tests.sh": "out=$(printf '  hi  \\n' | sed -f trim.sed)\n"
            '[ "$out" = hi ] || { echo "FAIL: got [$out]"; exit 1; }\necho ok\n',
        },
        "hidden": {
            "hidden_tests.sh": "[ \"$(printf '\\t a b \\n' | sed -f trim.sed)\" = 'a b' ] "
            "&& echo ok\n",
        },
        "hidden_test_cmd": "sh run_tests.sh && sh hidden_tests.sh",
        "scripts": {
            "preserve": fix(
                "trim.sed",
                "s/[[:space:]]*$//",
                "s/^[[:space:]]*//\ns/[[:space:]]*$//",
                "Only trailing blanks are removed.",
            ),
            "no-preserve": fix(
                "trim.sed",
                "s/[[:space:]]*$//",
                "s/^[[:space:]]*//\ns/[[:space:]]*$//",
                "Only trailing blanks are removed.",
            ),
        },
    },
    {
        "id": "py-roman",
        "prompt": "to_roman(4) gives 'IIII'; it must use subtractive notation ('IV').",
        "test_cmd": PY_TEST,
        "files": {
            "roman.py": "NUMERALS = [(1000, 'M'), (500, 'D'), (100, 'C'), (50, 'L'), (10, 'X'),\n"
            "            (5, 'V'), (1, 'I')]\n\n\ndef to_roman(n):\n    out = ''\n"
            "    for value, letters in NUMERALS:\n        while n >= value:\n"
            "            out += letters\n            n -= value\n    return out\n",
            "test_roman.py": "import unittest\n\nfrom roman import to_roman\n\n\n"
            "class RomanTest(unittest.TestCase):\n    def test_four(self):\n"
            "        self.assertEqual(to_roman(4), 'IV')\n",
        },
        "hidden": {
            "test_hidden.py": "import unittest\n\nfrom roman import to_roman\n\n\n"
            "class Hidden(unittest.TestCase):\n    def test_more(self):\n"
            "        self.assertEqual(to_roman(1994), 'MCMXCIV')\n"
            "        self.assertEqual(to_roman(9), 'IX')\n",
        },
        "scripts": {
            # Special-cases 4 only: the visible test passes, the hidden ones do not.
            "preserve": fix(
                "roman.py",
                "    out = ''\n",
                "    if n == 4:\n        return 'IV'\n    out = ''\n",
                "4 is the failing case.",
            ),
            "no-preserve": fix(
                "roman.py",
                "            (5, 'V'), (1, 'I')]",
                "            (5, 'V'), (1, 'I')]\nNUMERALS[1:1] = [(900, 'CM')]\n"
                "NUMERALS[3:3] = [(400, 'CD')]\nNUMERALS[5:5] = [(90, 'XC')]\n"
                "NUMERALS[7:7] = [(40, 'XL')]\nNUMERALS[9:9] = [(9, 'IX')]\n"
                "NUMERALS[11:11] = [(4, 'IV')]",
                "The table lacks the subtractive pairs.",
            ),
        },
    },
]
