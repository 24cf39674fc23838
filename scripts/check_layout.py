#!/usr/bin/env python3
"""Check the layout of the Rust crates: no import cycles, no file too long.

ARCHITECTURE.md promises that the engine (`crates/engine/src`) and `da`
(`crates/da/src`) are layered, folder by folder and file by file, and that
every engine file can be read in one sitting. This script holds them to it;
`make lint` (part of `make test`) runs it.

The import graph. A node is a module that has a file of its own (`x.rs`,
`x/mod.rs`, the crate root `lib.rs`/`main.rs`). There is an arrow from
one module to another when its code names the other: in a `use`
declaration (groups, `self`, `as`, any visibility) or in a path in the
code itself (`crate::a::b::f()`, `super::super::x`, `child::f()`), resolved
to the longest prefix that is a module with a file. Comments, string
literals, and `#[cfg(test)]` items and modules do not count (a test may
reach into any module; the layering is that of the shipped code).
It fails, naming the modules in order and where each arrow is written,
when:
- two files import each other, directly or around a longer ring;
- two folders (or a folder and a file beside it) do: at every folder, its
  files and sub-folders, each taken as a whole, form a graph of their own
  that must have no ring either. A folder's own file (`mod.rs` or `x.rs`
  beside `x/`) stands for itself there, so a module inside a folder
  that names the folder's facade (`super::Thing` re-exported there) makes
  a ring with it: name the sibling module instead.

The size. An engine file fails when it has more than MAX_CODE_LINES lines
of code: lines with something other than white space and comments on
them, `#[cfg(test)]` items and modules left out.

Usage:
    check_layout.py [--root DIR]   check the repository at DIR (default: this one)
    check_layout.py --self-test    prove on small trees that it finds what it should
    check_layout.py --sizes        also list every file with its code lines
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (crate source folder, whether its files' size is checked)
CRATES = [("crates/engine/src", True), ("crates/da/src", False)]
MAX_CODE_LINES = 600

# --- tokens -----------------------------------------------------------------


class Token:
    __slots__ = ("kind", "text", "line", "end_line")

    def __init__(self, kind: str, text: str, line: int, end_line: int):
        self.kind = kind  # "ident", "punct", "literal", "lifetime"
        self.text = text
        self.line = line
        self.end_line = end_line

    def __repr__(self) -> str:
        return f"{self.kind}:{self.text}@{self.line}"


def _is_ident_start(c: str) -> bool:
    return c == "_" or c.isalpha()


def _is_ident_char(c: str) -> bool:
    return c == "_" or c.isalnum()


def tokenize(src: str) -> list[Token]:
    """Rust source as tokens, comments dropped, literals kept whole.

    Enough of Rust's lexical grammar for paths: nested block comments, raw
    strings (`r#"…"#`), byte and C strings, char literals told from
    lifetimes, `::` as one token.
    """
    tokens: list[Token] = []
    i, n, line = 0, len(src), 1

    def add(kind: str, start: int, end: int, start_line: int) -> None:
        text = src[start:end]
        tokens.append(Token(kind, text, start_line, start_line + text.count("\n")))

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
        elif _raw_string_at(src, i):
            start, j = i, i
            while src[j] in "bcr":
                j += 1
            hashes = 0
            while src[j] == "#":
                hashes, j = hashes + 1, j + 1
            close = '"' + "#" * hashes
            end = src.find(close, j + 1)
            end = n if end < 0 else end + len(close)
            add("literal", start, end, line)
            line += src.count("\n", start, end)
            i = end
        elif c == '"' or (c in "bc" and src.startswith('"', i + 1)):
            start = i
            j = i + (1 if c == '"' else 2)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            add("literal", start, j + 1, line)
            line += src.count("\n", start, j + 1)
            i = j + 1
        elif c == "'" or (c == "b" and src.startswith("'", i + 1)):
            start = i
            j = i + (1 if c == "'" else 2)
            # A char literal: 'x', '\n', '\u{..}', '''; else a lifetime 'a.
            if j < n and src[j] == "\\":
                k = j + 2
                while k < n and src[k] != "'":
                    k += 1
                add("literal", start, k + 1, line)
                i = k + 1
            elif j + 1 < n and src[j + 1] == "'":
                add("literal", start, j + 2, line)
                i = j + 2
            else:
                k = j
                while k < n and _is_ident_char(src[k]):
                    k += 1
                add("lifetime", start, k, line)
                i = k
        elif _is_ident_start(c):
            j = i
            while j < n and _is_ident_char(src[j]):
                j += 1
            if src.startswith("r#", i) and j == i + 1:  # raw identifier r#type
                j = i + 2
                while j < n and _is_ident_char(src[j]):
                    j += 1
            add("ident", i, j, line)
            i = j
        elif c.isdigit():
            j = i
            while j < n and (_is_ident_char(src[j]) or src[j] == "."):
                if src[j] == "." and not (j + 1 < n and src[j + 1].isdigit()):
                    break
                j += 1
            add("literal", i, j, line)
            i = j
        elif src.startswith("::", i):
            add("punct", i, i + 2, line)
            i += 2
        else:
            add("punct", i, i + 1, line)
            i += 1
    return tokens


def _raw_string_at(src: str, i: int) -> bool:
    j = i
    if src.startswith(("br", "cr"), j):
        j += 2
    elif src.startswith("r", j):
        j += 1
    else:
        return False
    if i > 0 and _is_ident_char(src[i - 1]):
        return False
    k = j
    while k < len(src) and src[k] == "#":
        k += 1
    return k < len(src) and src[k] == '"' and (k > j or j > i)


# --- one file ---------------------------------------------------------------

OPEN = {"(": ")", "[": "]", "{": "}"}


def _attribute_end(toks: list[Token], i: int) -> int:
    """Index after the attribute `#[…]` (or `#![…]`) that starts at i."""
    j = i + 1
    if j < len(toks) and toks[j].text == "!":
        j += 1
    return _end(toks, j)


def _end(toks: list[Token], j: int, item: bool = False) -> int:
    """Index after what starts at j: the bracketed group that opens there,
    or (`item`) the item, at its `;` or at the `}` closing its body."""
    depth = 0
    while j < len(toks):
        t = toks[j].text
        if t in OPEN:
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
            if depth == 0 and (t == "}" or not item):
                return j + 1
        elif item and t == ";" and depth == 0:
            return j + 1
        j += 1
    return j


def _is_cfg_test(toks: list[Token], i: int, end: int) -> bool:
    inner = [t.text for t in toks[i:end]]
    return inner == ["#", "[", "cfg", "(", "test", ")", "]"]


class FileModule:
    """What one `.rs` file says: its modules, its paths, its code lines."""

    def __init__(self, path: Path, module: tuple[str, ...]):
        self.path = path
        self.module = module
        src = path.read_text(encoding="utf-8")
        toks = tokenize(src)
        kept, self.test_only_children = self._drop_cfg_test(toks)
        self.tokens = kept
        lines: set[int] = set()
        for t in kept:
            lines.update(range(t.line, t.end_line + 1))
        self.code_lines = len(lines)
        # Child modules declared here with a file of their own (`mod x;`),
        # and the inline ones (`mod x { … }`) with their token spans.
        self.child_files: list[str] = []
        self.inline: list[tuple[int, int, tuple[str, ...]]] = []
        self._find_modules()

    @staticmethod
    def _drop_cfg_test(toks: list[Token]) -> tuple[list[Token], set[str]]:
        kept: list[Token] = []
        test_children: set[str] = set()
        i = 0
        while i < len(toks):
            if toks[i].text == "#" and i + 1 < len(toks) and toks[i + 1].text == "[":
                end = _attribute_end(toks, i)
                if _is_cfg_test(toks, i, end):
                    j = end
                    while j < len(toks) and toks[j].text == "#":
                        j = _attribute_end(toks, j)
                    item_end = _end(toks, j, item=True)
                    words = [t.text for t in toks[j:item_end]]
                    if "mod" in words[:3] and words[-1] == ";":
                        test_children.add(words[words.index("mod") + 1])
                    i = item_end
                    continue
            kept.append(toks[i])
            i += 1
        return kept, test_children

    def _find_modules(self) -> None:
        toks = self.tokens
        # A stack of (closing depth, inline module path) while walking.
        stack: list[tuple[int, tuple[str, ...]]] = []
        depth = 0
        pending: tuple[str, ...] | None = None
        self.scopes: list[tuple[str, ...]] = []  # the scope of each token
        for i, t in enumerate(toks):
            scope = stack[-1][1] if stack else self.module
            self.scopes.append(scope)
            if t.text == "mod" and t.kind == "ident" and i + 2 < len(toks):
                name, after = toks[i + 1].text, toks[i + 2].text
                if after == ";" and scope == self.module:
                    self.child_files.append(name)
                elif after == "{":
                    pending = scope + (name,)
            if t.text == "{":
                depth += 1
                if pending is not None:
                    stack.append((depth, pending))
                    pending = None
            elif t.text == "}":
                if stack and stack[-1][0] == depth:
                    stack.pop()
                depth -= 1


# --- paths ------------------------------------------------------------------


def _use_paths(toks: list[Token], i: int) -> tuple[list[list[str]], int]:
    """The full paths of the `use` declaration whose tree starts at i."""
    paths: list[list[str]] = []

    def tree(j: int, prefix: list[str]) -> int:
        segs = list(prefix)
        while j < len(toks):
            t = toks[j].text
            if t == "::":
                j += 1
            elif t == "{":
                j += 1
                while j < len(toks) and toks[j].text != "}":
                    j = tree(j, segs)
                    if j < len(toks) and toks[j].text == ",":
                        j += 1
                return j + 1
            elif t == "*":
                paths.append(segs)
                return j + 1
            elif t == "as":
                paths.append(segs)
                return j + 2
            elif t in (",", "}", ";"):
                paths.append(segs)
                return j
            else:
                segs.append(t)
                j += 1
        paths.append(segs)
        return j

    j = tree(i, [])
    while j < len(toks) and toks[j].text != ";":
        j += 1
    return paths, j + 1


class Crate:
    def __init__(self, src_dir: Path, display_root: Path | None = None):
        self.src_dir = src_dir
        # File names in messages are relative to this folder.
        self.display_root = display_root or src_dir
        root = src_dir / "lib.rs"
        if not root.exists():
            root = src_dir / "main.rs"
        self.files: dict[tuple[str, ...], FileModule] = {}
        self._load(root, ())
        # module -> module -> first place the arrow is written (file:line)
        self.edges: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}
        for fm in self.files.values():
            self._collect(fm)

    def _load(self, path: Path, module: tuple[str, ...]) -> None:
        fm = FileModule(path, module)
        self.files[module] = fm
        own_dir = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
        for child in fm.child_files:
            if child in fm.test_only_children:
                continue
            for candidate in (own_dir / f"{child}.rs", own_dir / child / "mod.rs"):
                if candidate.exists():
                    self._load(candidate, module + (child,))
                    break
            else:
                raise SystemExit(f"{path}: `mod {child};` has no file")

    def name(self, module: tuple[str, ...]) -> str:
        return "crate" if not module else "::".join(module)

    def rel(self, fm: FileModule) -> str:
        return os.path.relpath(fm.path, self.display_root)

    def where(self, fm: FileModule, line: int) -> str:
        return f"{self.rel(fm)}:{line}"

    def resolve(self, scope: tuple[str, ...], segs: list[str]) -> tuple[str, ...] | None:
        """The module with a file that a path written in `scope` lands in."""
        if not segs:
            return None
        head, rest = segs[0], segs[1:]
        if head in ("crate", "$crate"):
            base: tuple[str, ...] = ()
        elif head == "self":
            base = scope
        elif head == "super":
            base = scope[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif self._is_child(scope, head):
            base, rest = scope + (head,), rest
        else:
            return None  # another crate, or a name brought in by a `use`
        full = base + tuple(s for s in rest if s != "self")
        for k in range(len(full), -1, -1):
            if full[:k] in self.files:
                return full[:k]
        return None

    def _is_child(self, scope: tuple[str, ...], name: str) -> bool:
        return scope + (name,) in self.files

    def _collect(self, fm: FileModule) -> None:
        toks = fm.tokens
        out = self.edges.setdefault(fm.module, {})

        def arrow(scope: tuple[str, ...], segs: list[str], line: int) -> None:
            target = self.resolve(scope, segs)
            if target is not None and target != fm.module:
                out.setdefault(target, self.where(fm, line))

        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "ident" and t.text == "use":
                paths, j = _use_paths(toks, i + 1)
                for p in paths:
                    arrow(fm.scopes[i], p, t.line)
                i = j
                continue
            start = _path_start(toks, i)
            if start is not None:
                segs = [start]
                j = i + (2 if start == "$crate" else 1)
                while j + 1 < len(toks) and toks[j].text == "::" and toks[j + 1].kind == "ident":
                    segs.append(toks[j + 1].text)
                    j += 2
                arrow(fm.scopes[i], segs, t.line)
                i = j
                continue
            i += 1


def _path_start(toks: list[Token], i: int) -> str | None:
    """The first segment of a path that starts at i (`a::…`, `$crate::…`), if one does."""
    t = toks[i]
    if t.text == "$" and i + 2 < len(toks) and toks[i + 1].text == "crate" and toks[i + 2].text == "::":
        return "$crate"
    if t.kind != "ident" or i + 1 >= len(toks) or toks[i + 1].text != "::":
        return None
    if i > 0 and toks[i - 1].text in ("::", "$"):
        return None  # the middle of a path, or `$crate` already seen
    return t.text


# --- rings ------------------------------------------------------------------


def strongly_connected(nodes, edges) -> list[list]:
    """Tarjan's components of more than one node, each in a stable order."""
    index: dict = {}
    low: dict = {}
    on: set = set()
    stack: list = []
    out: list[list] = []
    counter = [0]

    def visit(v) -> None:
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def a_ring(component: list, edges) -> list:
    """One ring through the component's first node, by the shortest way back."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w == start:
                ring = [v]
                while previous[ring[-1]] is not None:
                    ring.append(previous[ring[-1]])
                return list(reversed(ring)) + [start]
            if w in members and w not in previous:
                previous[w] = v
                queue.append(w)
    return component


def find_rings(crate: Crate) -> list[str]:
    """Every ring among files, and among the files and folders of each folder."""
    problems = []
    edges = {a: set(bs) for a, bs in crate.edges.items()}
    for comp in strongly_connected(crate.files, edges):
        ring = a_ring(comp, edges)
        steps = [
            f"{crate.name(a)} -> {crate.name(b)} ({crate.edges[a][b]})" for a, b in zip(ring, ring[1:])
        ]
        others = "" if len(comp) == len(ring) - 1 else (
            "\n  (one ring of several among: " + ", ".join(crate.name(m) for m in comp) + ")"
        )
        problems.append("import cycle between files:\n    " + "\n    ".join(steps) + others)
    # Folder by folder: the files and sub-folders inside, each as one node.
    folders = {m[:k] for m in crate.files for k in range(len(m))}
    for folder in sorted(folders):
        fedges: dict = {}
        where: dict = {}
        for a, bs in crate.edges.items():
            for b, at in bs.items():
                if a[: len(folder)] != folder or b[: len(folder)] != folder:
                    continue
                ka, kb = _part(folder, a), _part(folder, b)
                if ka != kb:
                    fedges.setdefault(ka, set()).add(kb)
                    where.setdefault((ka, kb), f"{crate.name(a)} -> {crate.name(b)} ({at})")
        nodes = set(fedges) | {b for bs in fedges.values() for b in bs}
        for comp in strongly_connected(nodes, fedges):
            if all(_is_file_key(crate, folder, k) for k in comp):
                continue  # files alone: their rings are named above
            ring = a_ring(comp, fedges)
            label = crate.name(folder) if folder else "crate"
            steps = [f"{a} -> {b}: {where[(a, b)]}" for a, b in zip(ring, ring[1:])]
            others = "" if len(comp) == len(ring) - 1 else "\n  (one ring of several among: " + ", ".join(comp) + ")"
            problems.append(
                f"import cycle inside `{label}` between its parts:\n    " + "\n    ".join(steps) + others
            )
    return problems


def _part(folder: tuple[str, ...], module: tuple[str, ...]) -> str:
    """What a module is, seen from inside a folder: a child's name, or the folder's own file."""
    if module == folder:
        return "(" + (folder[-1] if folder else "crate") + "'s own file)"
    return module[len(folder)]


def _is_file_key(crate: Crate, folder: tuple[str, ...], key: str) -> bool:
    if key.startswith("("):
        return True
    module = folder + (key,)
    return not any(m[: len(module)] == module and m != module for m in crate.files)


def oversized(crate: Crate, limit: int) -> list[str]:
    return [
        f"{crate.rel(fm)}: {fm.code_lines} lines of code, more than {limit}"
        " (tests aside): split it by what its parts are for"
        for fm in sorted(crate.files.values(), key=lambda f: str(f.path))
        if fm.code_lines > limit
    ]


def check(root: Path, sizes: bool = False) -> list[str]:
    problems = []
    for folder, size_checked in CRATES:
        crate = Crate(root / folder, root)
        problems += find_rings(crate)
        if size_checked:
            problems += oversized(crate, MAX_CODE_LINES)
        if sizes:
            for fm in sorted(crate.files.values(), key=lambda f: str(f.path)):
                print(f"{fm.code_lines:6} {os.path.relpath(fm.path, root)}")
    return problems


# --- self-test --------------------------------------------------------------


def _tree(files: "dict[str, str] | str") -> Path:
    """A crate in a temporary folder: `{path: source}`, or lines `path | source`."""
    if isinstance(files, str):
        files = dict(
            (part.strip() for part in line.split("|", 1)) for line in files.strip().splitlines()
        )
    base = Path(tempfile.mkdtemp(prefix="check_layout_"))
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return base


class SelfTest(unittest.TestCase):
    def expect(self, files, *rings: "list[str]") -> None:
        """The rings found in `files`: as many as `rings`, each holding its fragments."""
        found = find_rings(Crate(_tree(files)))
        self.assertEqual(len(found), len(rings), found)
        for text, fragments in zip(found, rings):
            for fragment in fragments:
                self.assertIn(fragment, text)

    def test_a_layered_tree_passes(self):
        self.expect(
            """
            lib.rs | mod a; mod b; pub use a::A;
            a.rs   | use crate::b::B; pub struct A(B);
            b.rs   | pub struct B;
            """
        )

    def test_a_ring_through_a_use_group(self):
        self.expect(
            """
            lib.rs | mod a; mod b;
            a.rs   | pub(crate) use crate::{b::{self, B}, x::y};
            b.rs   | fn f() { let _ = crate::a::A::new(); }
            """,
            ["a -> b (", "b -> a ("],
        )

    def test_super_super_and_child_paths(self):
        # other -> top::inner -> top::inner::leaf -> other, and the same
        # ring seen among the crate's folders: other <-> top.
        self.expect(
            """
            lib.rs            | mod top; mod other;
            top/mod.rs        | mod inner;
            top/inner/mod.rs  | mod leaf; pub fn f() { leaf::g() }
            top/inner/leaf.rs | use super::super::super::other::X; pub fn g() {}
            other.rs          | pub struct X; fn h() { crate::top::inner::f() }
            """,
            ["other -> top::inner (", "top::inner::leaf -> other ("],
            ["inside `crate`"],
        )

    def test_a_ring_between_folders_not_files(self):
        self.expect(
            """
            lib.rs   | mod x; mod y;
            x/mod.rs | mod p; mod q;
            x/p.rs   | use crate::y::r::R;
            x/q.rs   | pub struct Q;
            y/mod.rs | mod r; mod s;
            y/r.rs   | pub struct R;
            y/s.rs   | use crate::x::q::Q;
            """,
            ["inside `crate` between its parts", "x -> y: x::p -> y::r", "y -> x: y::s -> x::q"],
        )

    def test_a_facade_named_from_inside_its_folder(self):
        self.expect(
            """
            lib.rs   | mod s;
            s.rs     | mod run; pub use run::go; pub struct Options;
            s/run.rs | use super::Options; pub fn go(_: Options) {}
            """,
            ["s -> s::run"],
        )

    def test_inline_modules_resolve_super_from_where_they_stand(self):
        self.expect(
            """
            lib.rs | mod a; mod b;
            a.rs   | mod imp { use super::super::b::B; }
            b.rs   | mod imp { pub fn f() { super::g() } } fn g() {} pub struct B;
            """
        )

    def test_comments_strings_and_tests_do_not_count(self):
        b = """\
            //! Not `crate::a` either.
            /* crate::a::x /* nested */ crate::a::y */
            pub struct B;
            const S: &str = "crate::a::z";
            const R: &str = r#"crate::a::"z""#;
            const C: char = '"';
            fn f<'a>(_: &'a str) {}

            #[cfg(test)]
            fn helper() { crate::a::help() }

            #[cfg(test)]
            mod tests {
                use crate::a;
            }
            """
        files = {"lib.rs": "mod a;\nmod b;\n", "a.rs": "use crate::b::B;\n", "b.rs": b}
        self.expect(files)
        self.assertEqual(Crate(_tree(files)).files[("b",)].code_lines, 5)

    def test_an_oversized_file_is_named(self):
        body = "fn f() {\n" + "    let _ = 1;\n" * 10 + "}\n"
        tests = "#[cfg(test)]\nmod tests {\n" + "    fn t() {}\n" * 50 + "}\n"
        crate = Crate(_tree({"lib.rs": "mod big;\n", "big.rs": "// a comment\n\n" + body + tests}))
        self.assertEqual(crate.files[("big",)].code_lines, 12)
        self.assertTrue(oversized(crate, 11)[0].split(":")[0].endswith("big.rs"))
        self.assertEqual(oversized(crate, 12), [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--sizes", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        result = unittest.main(argv=[sys.argv[0]], exit=False, verbosity=1).result
        return 0 if result.wasSuccessful() else 1
    problems = check(args.root, sizes=args.sizes)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_layout: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check_layout: no import cycles in the engine or da; no engine file over "
          f"{MAX_CODE_LINES} lines of code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
