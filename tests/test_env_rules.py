"""The launcher's environment rules have one source (helper/envrules.py), and every variable the package reads is
either fingerprinted by the launcher or declared irrelevant to a recorded `get` answer, with its reason."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helper import envrules

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "packaging" / "launcher" / "launcher.c"
PACKAGE = ROOT / "helper"
# Calls that read the environment without naming os.environ; None: any variable.
IMPLICIT_READS: dict[str, tuple[str, ...] | None] = {
    "os.path.expanduser": ("HOME",), "shutil.which": ("PATH",), "os.path.expandvars": None,
}
READ_METHODS = frozenset({"get", "pop", "setdefault"})  # os.environ.M(name, ...)
WRITE_METHODS = frozenset({"update", "clear", "__setitem__", "__delitem__"})


# ---- the scanner ------------------------------------------------------------------------------------------------


Strings = tuple[str, ...] | None


@dataclass(frozen=True)
class Read:
    """One environment read: `name` None when the name is not a constant (or the whole environment is read)."""

    where: str  # "module.function", as DYNAMIC names it
    line: int
    name: str | None
    how: str = ""  # for a read that names no variable: why


@dataclass
class Module:
    name: str  # "helper.backends.env"
    tree: ast.Module
    package: str

    @property
    def short(self) -> str:
        return self.name.removeprefix("helper").lstrip(".") or "__init__"


def load_package(folder: Path = PACKAGE) -> dict[str, Module]:
    """Every module under helper/, parsed."""
    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = ["helper", *path.relative_to(folder).with_suffix("").parts]
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        modules[name] = Module(name, ast.parse(path.read_text(encoding="utf-8")),
                               name if is_init else name.rpartition(".")[0])
    return modules


class Constants:
    """Module-level string constants, followed through `NAME = OTHER` and imports between the modules."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self.bindings: dict[str, dict[str, ast.expr | tuple[str, str]]] = {}
        for module in modules.values():
            own: dict[str, ast.expr | tuple[str, str]] = {}
            for node in module.tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    own[node.targets[0].id] = node.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                    own[node.target.id] = node.value
                elif isinstance(node, ast.ImportFrom):
                    source = self._absolute(module, node)
                    for alias in node.names:
                        own[alias.asname or alias.name] = (source, alias.name)
            self.bindings[module.name] = own

    def _absolute(self, module: Module, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.package.split(".")[: len(module.package.split(".")) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def module_alias(self, module: str, name: str) -> str | None:
        """The helper module `name` stands for in `module` (`from . import fastpath`), if any."""
        bound = self.bindings.get(module, {}).get(name)
        if isinstance(bound, tuple) and f"{bound[0]}.{bound[1]}" in self.modules:
            return f"{bound[0]}.{bound[1]}"
        return None

    def lookup(self, module: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()) -> Strings:
        """The string(s) `name` is bound to at the top of `module`, or None."""
        bound = self.bindings.get(module, {}).get(name)
        if bound is None or (module, name) in seen:
            return None
        seen |= {(module, name)}
        if isinstance(bound, tuple):
            return self.lookup(bound[0], bound[1], seen)
        return self.values(module, bound, seen)

    def values(self, module: str, node: ast.expr, seen: frozenset[tuple[str, str]] = frozenset()) -> Strings:
        """The strings `node` evaluates to: a literal, a constant, `module.CONSTANT`, a tuple of those (starred,
        sliced); None when it is not constant."""
        if isinstance(node, ast.Constant):
            return (node.value,) if isinstance(node.value, str) else None
        if isinstance(node, ast.Name):
            return self.lookup(module, node.id, seen)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = self.module_alias(module, node.value.id)
            return self.lookup(target, node.attr, seen) if target else None
        if isinstance(node, ast.Starred):
            return self.values(module, node.value, seen)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            parts = [self.values(module, element, seen) for element in node.elts]
            return None if None in parts else tuple(name for part in parts for name in part or ())
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            whole = self.values(module, node.value, seen)
            bounds = [b.value if isinstance(b, ast.Constant) else b
                      for b in (node.slice.lower, node.slice.upper, node.slice.step)]
            if whole is None or not all(b is None or isinstance(b, int) for b in bounds):
                return None
            return whole[slice(*bounds)]  # type: ignore[arg-type]  # ints or None, checked just above
        return None


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _locals(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Parameters and assigned names: a Name among them is not a module constant."""
    args = function.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


class Scanner(ast.NodeVisitor):
    """Collects the environment reads of one module; writes (`os.environ[X] = ...`) are not reads."""

    def __init__(self, module: Module, constants: Constants) -> None:
        self.module = module
        self.constants = constants
        self.reads: list[Read] = []
        self.scope: list[str] = []
        self.locals: list[set[str]] = [set()]
        self.loops: list[dict[str, tuple[str, ...]]] = [{}]
        self.aliases: list[set[str]] = [set()]  # `env = os.environ`, per function
        self.handled: set[int] = set()  # environ nodes one of the patterns below consumed
        self.uses: list[tuple[ast.AST, Read]] = []  # every environ node, as a whole-environment read
        self.os_names = {"os"}
        self.environ_names: set[str] = set()  # `from os import environ`
        self.getenv_names: set[str] = set()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                self.os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
            elif isinstance(node, ast.ImportFrom) and node.module == "os" and not node.level:
                self.environ_names |= {a.asname or a.name for a in node.names if a.name == "environ"}
                self.getenv_names |= {a.asname or a.name for a in node.names if a.name == "getenv"}

    def scan(self) -> list[Read]:
        self.aliases[0] = self._aliases(self.module.tree.body)
        self.visit(self.module.tree)
        # any other use of os.environ (.items(), dict(os.environ), an argument) reads all of it
        self.reads += [read for node, read in self.uses if id(node) not in self.handled]
        return self.reads

    def _aliases(self, nodes: list[ast.stmt]) -> set[str]:
        found = set()
        for node in (n for statement in nodes for n in ast.walk(statement)):
            if isinstance(node, ast.Assign) and self._is_environ(node.value):
                found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
                self.handled.add(id(node.value))
        return found

    def _is_environ(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb"):
            return isinstance(node.value, ast.Name) and node.value.id in self.os_names
        return isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and (
            node.id in self.environ_names or any(node.id in aliases for aliases in self.aliases))

    def _where(self) -> str:
        return ".".join([self.module.short, *self.scope]) if self.scope else f"{self.module.short}.<module>"

    def _names(self, node: ast.expr) -> Strings:
        if isinstance(node, ast.Name) and node.id in self.loops[-1]:
            return self.loops[-1][node.id]
        if isinstance(node, ast.Name) and node.id in self.locals[-1]:
            return None
        return self.constants.values(self.module.name, node)

    def _read(self, at: ast.AST, environ: ast.AST | None, name: ast.expr) -> None:
        if environ is not None:
            self.handled.add(id(environ))
        names = self._names(name)
        for variable in names if names is not None else (None,):
            self.reads.append(Read(self._where(), at.lineno, variable))  # type: ignore[attr-defined]

    def _loops(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, tuple[str, ...]]:
        """`for var in CONSTANT_NAMES` (statement or comprehension): var -> the names it takes."""
        found: dict[str, tuple[str, ...]] = {}
        for node in ast.walk(function):
            for target, source in ([(node.target, node.iter)] if isinstance(node, (ast.For, ast.comprehension))
                                   else []):
                names = self.constants.values(self.module.name, source)
                if isinstance(target, ast.Name) and names is not None:
                    found[target.id] = found.get(target.id, ()) + names
        return found

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.locals.append(_locals(node))
        self.loops.append(self._loops(node))
        self.aliases.append(self._aliases(node.body))
        self.generic_visit(node)
        self.aliases.pop()
        self.loops.pop()
        self.locals.pop()
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def _use(self, node: ast.Name | ast.Attribute) -> None:
        if self._is_environ(node):
            self.uses.append((node, Read(self._where(), node.lineno, None)))
        self.generic_visit(node)

    visit_Name = visit_Attribute = _use

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and self._is_environ(func.value):
            if func.attr in READ_METHODS and node.args:
                self._read(node, func.value, node.args[0])
            elif func.attr in WRITE_METHODS:
                self.handled.add(id(func.value))
            # .items(), .copy(), ...: left unhandled, so a whole-environment read
        elif node.args and (_dotted(func) in {f"{o}.getenv" for o in self.os_names} or
                            (isinstance(func, ast.Name) and func.id in self.getenv_names)):
            self._read(node, None, node.args[0])
        elif _dotted(func) in IMPLICIT_READS:
            how = "" if IMPLICIT_READS[_dotted(func)] else f"{_dotted(func)} reads whichever variables its text names"
            for variable in IMPLICIT_READS[_dotted(func)] or (None,):
                self.reads.append(Read(self._where(), node.lineno, variable, how))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._is_environ(node.value):
            if isinstance(node.ctx, ast.Load):
                self._read(node, node.value, node.slice)
            else:
                self.handled.add(id(node.value))  # a write or a del
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)) and self._is_environ(right):
                self._read(node, right, node.left)
        self.generic_visit(node)


def scan_package(modules: dict[str, Module]) -> list[Read]:
    """Every environment read in `modules`."""
    constants = Constants(modules)
    return [read for module in modules.values() for read in Scanner(module, constants).scan()]


def scan_source(source: str, module: str = "helper.sample") -> list[Read]:
    """The reads of one module given as text (for the scanner's own tests)."""
    return scan_package({module: Module(module, ast.parse(source), module.rpartition(".")[0])})


def literals(module: Module) -> set[str]:
    return {n.value for n in ast.walk(module.tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def problems(reads: list[Read], modules: dict[str, Module], irrelevant: dict[str, str],
             dynamic: dict[str, tuple[str, ...] | str]) -> list[str]:
    """What is wrong with the declarations, for these reads: one line per problem, empty when all is well."""
    found: list[str] = []
    named = [(read.where, read.line, read.name) for read in reads if read.name is not None]
    dynamic_sites = {read.where: read.line for read in reads if read.name is None}
    for read in sorted((r for r in reads if r.name is None and r.where not in dynamic), key=lambda r: r.where):
        found.append(f"{read.where}:{read.line} reads a variable whose name is not a constant"
                     f"{' (' + read.how + ')' if read.how else ''}: declare it in DYNAMIC with the names it can "
                     "read or the reason none of them changes a recorded answer")
    for where, declared in dynamic.items():
        if where not in dynamic_sites:
            found.append(f"DYNAMIC[{where!r}] is stale: no such read")
        elif isinstance(declared, str):
            if not declared.strip():
                found.append(f"DYNAMIC[{where!r}] needs a reason")
        else:
            module = max((m for m in modules.values() if where.startswith(m.short + ".")),
                         key=lambda m: len(m.short), default=None)
            for name in declared:
                if module is not None and name not in literals(module):
                    found.append(f"DYNAMIC[{where!r}] names {name}, which its module never spells")
                named.append((where, dynamic_sites[where], name))

    def reason_for(name: str) -> str | None:
        for key, reason in irrelevant.items():
            if key == name or (key.endswith("*") and name.startswith(key[:-1])):
                return reason
        return None

    for where, line, name in sorted(named, key=lambda r: (r[0], r[1], r[2] or "")):
        assert name is not None
        if not envrules.fingerprinted(name) and not (reason_for(name) or "").strip():
            found.append(f"{where}:{line} reads {name}: the launcher does not fingerprint it; fingerprint it in "
                         f"launcher.c and helper/envrules.py, or declare it in IRRELEVANT with the reason")
    read_names = {name for _, _, name in named}
    for key in irrelevant:
        matches = {n for n in read_names if n == key or (key.endswith("*") and n is not None and
                                                           n.startswith(key[:-1]))}
        if not matches:
            found.append(f"IRRELEVANT[{key!r}] is stale: nothing reads it")
        elif any(envrules.fingerprinted(n) for n in matches if n is not None):
            found.append(f"IRRELEVANT[{key!r}] is fingerprinted: it cannot be both")
    return found


# ---- the C side -------------------------------------------------------------------------------------------------


def c_array(name: str) -> tuple[str, ...]:
    """The strings of `static const char *const NAME[] = {..., NULL}` in launcher.c."""
    source = LAUNCHER.read_text(encoding="utf-8")
    found = re.search(rf"static const char \*const {name}\[\] = \{{(.*?)\}};", source, re.S)
    assert found, f"{name} not found in launcher.c"
    body = found.group(1)
    assert re.fullmatch(r'(\s*"[^"\\]*"\s*,)*\s*NULL\s*,?\s*', body), f"{name} is not a plain string table: {body}"
    return tuple(re.findall(r'"([^"\\]*)"', body))


def c_define(name: str) -> str:
    found = re.search(rf'^#define {name} "([^"\\]*)"', LAUNCHER.read_text(encoding="utf-8"), re.M)
    assert found, f"#define {name} not found in launcher.c"
    return found.group(1)


def test_the_launchers_tables_are_envrules_tables() -> None:
    assert c_array("ENV_PREFIXES") == envrules.FINGERPRINTED_PREFIXES
    assert c_array("ENV_NAMES") == envrules.FINGERPRINTED_NAMES
    assert c_array("SECRET_MARKS") == envrules.SECRET_MARKS
    assert c_array("SECRET_ENDINGS") == envrules.SECRET_ENDINGS


def test_the_launchers_exceptions_are_envrules_exceptions() -> None:
    source = LAUNCHER.read_text(encoding="utf-8")
    assert c_define("RECORD_VAR") == envrules.RECORD_VAR
    assert re.search(r"strncmp\(entry, RECORD_VAR, len\) == 0\) \{\s*return 0;", source), \
        "fingerprint_env() no longer leaves RECORD_VAR out"
    not_secret = re.findall(r'if \(ends_with\(entry, len, "([^"]*)"\)\) \{\s*return 0;', source)
    assert not_secret == [envrules.NOT_SECRET_ENDING]


def test_the_record_variable_is_the_one_python_reads() -> None:
    import helper
    from helper import fastpath

    python_side = getattr(fastpath, "RECORD_VAR", None) or getattr(helper, "FAST_RECORD_VAR", None)
    assert python_side == envrules.RECORD_VAR


@pytest.mark.parametrize(("name", "fingerprinted", "secret"), [
    ("AWS_ACCESS_KEY_ID", True, False),            # a key id is not a secret; answers depend on its value
    ("AWS_SECRET_ACCESS_KEY", True, True),
    ("AWS_SESSION_TOKEN", True, True),
    ("AWS_PROFILE", True, False),
    ("GOOGLE_APPLICATION_CREDENTIALS", True, False),
    ("AZURE_FEDERATED_TOKEN_FILE", True, False),   # _FILE wins over TOKEN: a path
    ("AZURE_CLIENT_SECRET", True, True),
    ("IDENTITY_HEADER", True, True),
    ("SWITCHBOARD_PASSPHRASE", True, True),
    ("SWITCHBOARD_FAST_RECORD", False, False),     # the launcher's own
    ("HOME", True, False),
    ("HOMEDIR", False, False),                     # names are whole names, not prefixes
    ("XDG_RUNTIME_DIR", False, False),
    ("NGC_API_KEY", False, True),
    ("GITLAB_PAT", False, True),
    ("PATH", False, False),
])
def test_fingerprinted_and_secret_names_follow_the_c_rules(name: str, fingerprinted: bool, secret: bool) -> None:
    assert envrules.fingerprinted(name) is fingerprinted
    assert envrules.secret_name(name) is secret


# ---- every variable the package reads ----------------------------------------------------------------------------


def test_every_variable_the_package_reads_is_fingerprinted_or_declared_irrelevant() -> None:
    modules = load_package()
    reads = scan_package(modules)
    assert any(read.name == "GOOGLE_APPLICATION_CREDENTIALS" for read in reads), "the scan resolves no constants"
    assert problems(reads, modules, envrules.IRRELEVANT, envrules.DYNAMIC) == []


def test_every_declaration_has_a_reason() -> None:
    assert all(reason.strip() for reason in envrules.IRRELEVANT.values())
    assert all(entry if isinstance(entry, tuple) else entry.strip() for entry in envrules.DYNAMIC.values())


SAMPLE = '''
import os
from os import getenv

NAME = "AWS_REGION"

def read(param):
    env = os.environ
    a = os.environ.get("NGC_API_KEY")
    b = env.get(NAME)
    c = "CI_JOB_TOKEN" in os.environ
    d = getenv("SWITCHBOARD_STORE")
    e = os.environ[param]
    f = [os.environ.get(name) for name in (NAME, *("CI_JOB_TOKEN",))]
    os.environ["WRITTEN_ONLY"] = "x"
    del os.environ["DELETED_ONLY"]
    return dict(os.environ)
'''


def test_the_scanner_finds_every_form_of_read_and_ignores_writes() -> None:
    reads = scan_source(SAMPLE)
    assert sorted(read.name or "?" for read in reads) == sorted(
        ["NGC_API_KEY", "AWS_REGION", "CI_JOB_TOKEN", "SWITCHBOARD_STORE", "?", "AWS_REGION", "CI_JOB_TOKEN", "?"])
    assert {read.where for read in reads} == {"sample.read"}


def test_the_check_fails_on_an_undeclared_variable_a_dynamic_read_and_a_stale_entry() -> None:
    modules = {"helper.sample": Module("helper.sample", ast.parse(SAMPLE), "helper")}
    reads = scan_package(modules)
    found = problems(reads, modules, {"CI_JOB_TOKEN": "a sample reason", "NOBODY_READS_THIS": "stale"}, {})
    assert any("reads NGC_API_KEY" in line for line in found)
    assert not any("reads CI_JOB_TOKEN" in line or "AWS_REGION" in line for line in found)
    assert any("sample.read" in line and "DYNAMIC" in line for line in found)
    assert any("NOBODY_READS_THIS" in line and "stale" in line for line in found)
    declared = problems(reads, modules, {"CI_JOB_TOKEN": "r", "NGC_API_KEY": "r"}, {"sample.read": "r"})
    assert declared == []
    assert any("needs a reason" in line for line in problems(reads, modules, {"CI_JOB_TOKEN": "r", "NGC_API_KEY": "r"},
                                                               {"sample.read": " "}))


def test_the_scanner_follows_constants_imported_from_another_module() -> None:
    modules = {
        "helper": Module("helper", ast.parse('VAR = "FROM_INIT"'), "helper"),
        "helper.names": Module("helper.names", ast.parse('from . import VAR\nOTHER = VAR\nOWN = "FROM_NAMES"'),
                               "helper"),
        "helper.sub.user": Module("helper.sub.user", ast.parse(
            "import os\nfrom ..names import OTHER\nfrom .. import names\n"
            "def f():\n    return os.environ.get(OTHER), os.getenv(names.OWN)\n"), "helper.sub"),
    }
    assert sorted(str(read.name) for read in scan_package(modules)) == ["FROM_INIT", "FROM_NAMES"]


def test_nothing_on_a_get_imports_envrules_and_it_imports_nothing() -> None:
    probe = ("import sys, helper, helper.cli\nloaded = 'helper.envrules' in sys.modules\nbefore = set(sys.modules)\n"
             "import helper.envrules\nprint(loaded, sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split(None, 1) == ["False", "['helper.envrules']\n"]
