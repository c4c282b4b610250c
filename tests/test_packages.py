"""Release packaging: packaging/archive, packaging/deb/build-deb and packaging/generate-manifests.

The archive and .deb tests package a frozen onedir build (build/binary's
.work/pyinstaller/dist/docker-credential-switchboard): they run only when SWITCHBOARD_BINARY_DIR names
that folder, and skip otherwise. With CI=true and SWITCHBOARD_BINARY_DIR set, a missing tool fails
instead. Installing the .deb needs root (skipped otherwise). The generator test and the tests that
use a fake onedir folder (a shell script for an executable) need no build and always run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from helper import NAME, __version__
from tests.conftest import NOT_FOUND, ROOT, require_tool

pytestmark = pytest.mark.packaging

# Read at import: the autouse isolated_home fixture removes every SWITCHBOARD_* variable from the
# environment before each test.
BINARY_DIR = os.environ.get("SWITCHBOARD_BINARY_DIR", "")
# an arm64 Debian root (build/binary-arm64's) in which an arm64 .deb built on x86_64 is installed, under emulation
ARM64_ROOT = os.environ.get("SWITCHBOARD_ARM64_ROOT", "")
ARCHIVE = ROOT / "packaging" / "archive"
BUILD_DEB = ROOT / "packaging" / "deb" / "build-deb"
GENERATOR = ROOT / "packaging" / "generate-manifests"
EXE = NAME + (".exe" if sys.platform == "win32" else "")

posix_only = pytest.mark.skipif(sys.platform == "win32",
                                reason="the packaging scripts are bash: the release workflow runs them in Git Bash")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Debian packages are built on Linux")


def run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        input_text: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it fails."""
    proc = subprocess.run(argv, cwd=cwd, env=env, input=input_text, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def this_platform() -> str:
    """The platform tag packaging/archive picks on this machine."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "windows"}[platform.system()]
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    return f"{system}-{'x64' if system == 'windows' and machine == 'x86_64' else machine}"


def built_for(exe: Path) -> str:
    """The architecture an ELF, Mach-O or PE executable is built for (x86_64, arm64), from its header;
    "" for anything else (a script). packaging/archive reads the same bytes."""
    head = exe.read_bytes()[:4096]
    if head[:4] == b"\x7fELF":
        return {0x3E: "x86_64", 0xB7: "arm64"}.get(int.from_bytes(head[18:20], "little"), "other")
    if head[:4] == b"\xcf\xfa\xed\xfe":
        return {0x01000007: "x86_64", 0x0100000C: "arm64"}.get(int.from_bytes(head[4:8], "little"), "other")
    if head[:2] == b"MZ":
        pe = int.from_bytes(head[60:64], "little")
        return {0x8664: "x86_64", 0xAA64: "arm64"}.get(int.from_bytes(head[pe + 4:pe + 6], "little"), "other")
    return ""


def onedir_platform(onedir: Path) -> str:
    """The platform tag packaging/archive picks for a onedir build: its executable's architecture (an arm64
    build packed on x86_64 is linux-arm64), this machine's OS."""
    system, _sep, machine = this_platform().partition("-")
    arch = built_for(onedir / EXE)
    if arch in ("x86_64", "arm64"):
        machine = "x64" if system == "windows" and arch == "x86_64" else arch
    return f"{system}-{machine}"


def deb_arch(onedir: Path) -> str:
    """The Debian architecture of a Linux onedir build, from its executable (build-deb reads it the same way)."""
    return {"x86_64": "amd64", "arm64": "arm64"}[built_for(onedir / NAME)]


def files_under(folder: Path) -> set[str]:
    """Relative POSIX paths of the files and symlinks in a folder."""
    found: set[str] = set()
    for parent, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if (Path(parent) / d).is_symlink()]:  # walk does not enter those
            found.add((Path(parent) / name).relative_to(folder).as_posix())
    return found


def sums_lines(sums: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in sums.read_text().splitlines():
        digest, _sep, name = line.partition("  ")
        pairs.append((digest, name))
    return pairs


def check_sums(out: Path, file_name: str) -> None:
    """SHA256SUMS in `out` lists `file_name` once with its real hash, and the checksum tool agrees."""
    sums = out / "SHA256SUMS"
    listed = [digest for digest, name in sums_lines(sums) if name == file_name]
    assert listed == [hashlib.sha256((out / file_name).read_bytes()).hexdigest()]
    if shutil.which("sha256sum"):
        checker = ["sha256sum", "-c", "SHA256SUMS"]
    elif shutil.which("shasum"):
        checker = ["shasum", "-a", "256", "-c", "SHA256SUMS"]  # macOS
    else:
        checker = [require_tool("sha256sum"), "-c", "SHA256SUMS"]
    checked = run(checker, cwd=out)
    assert f"{file_name}: OK" in checked.stdout


def throwaway_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment with a fresh HOME and XDG folders, and that HOME."""
    home = tmp_path / "throwaway-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CACHE_HOME=str(home / ".cache"))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env, home


def fake_onedir(parent: Path, exe_name: str = NAME, says: str = f"{NAME} {__version__}") -> Path:
    """A folder shaped like a PyInstaller onedir build whose executable only answers `version`."""
    folder = parent / NAME
    (folder / "_internal").mkdir(parents=True)
    (folder / "_internal" / "base_library.zip").write_bytes(b"not really")
    exe = folder / exe_name
    exe.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo "{says}" && exit 0\nexit 1\n')
    exe.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def onedir() -> Path:
    """The onedir build named by SWITCHBOARD_BINARY_DIR; the tests using it skip when none is named."""
    if not BINARY_DIR:
        pytest.skip("SWITCHBOARD_BINARY_DIR is not set: it names the onedir build (build/binary) these tests package")
    folder = Path(BINARY_DIR)
    exe = folder / EXE
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        pytest.fail(f"SWITCHBOARD_BINARY_DIR={BINARY_DIR} holds no executable {EXE}: is it the onedir folder?")
    require_tool("bash")
    return folder


# --- archives ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_archive(onedir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """packaging/archive run once on the onedir build, for the platform its executable is built for."""
    require_tool("tar")
    require_tool("gzip")
    out = tmp_path_factory.mktemp("archive") / "dist"
    made = run(["bash", str(ARCHIVE), "-o", str(out), str(onedir)])
    archive = Path(last_line(made.stdout))
    assert archive == out.resolve() / f"{NAME}-{__version__}-{onedir_platform(onedir)}.tar.gz"
    return archive


@posix_only
def test_archive_layout_and_checksum(onedir: Path, built_archive: Path) -> None:
    archive = built_archive
    base = f"{NAME}-{__version__}-{onedir_platform(onedir)}"

    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name, member in members.items():
        assert name == base or name.startswith(base + "/"), f"{name} is outside the one top-level folder"
        assert ".." not in name.split("/")
        assert (member.uid, member.gid) == (0, 0)
        assert member.issym() or not member.mode & 0o022, f"{name} is writable by group or others"
    inside = {name[len(base) + 1:] for name, m in members.items() if m.isfile() or m.issym()}
    assert {"LICENSE", "INSTALL.txt"} <= inside
    assert {f"{NAME}/{path}" for path in files_under(onedir)} == inside - {"LICENSE", "INSTALL.txt"}
    assert members[f"{base}/{NAME}/{NAME}"].mode & 0o111 == 0o111

    with tarfile.open(archive) as tar:
        license_file = tar.extractfile(f"{base}/LICENSE")
        install_file = tar.extractfile(f"{base}/INSTALL.txt")
        assert license_file is not None and install_file is not None
        assert license_file.read() == (ROOT / "LICENSE").read_bytes()
        assert install_file.read() == (ROOT / "packaging" / "INSTALL.txt").read_bytes()
    check_sums(archive.parent, archive.name)


@posix_only
def test_archive_installs_as_install_txt_says(onedir: Path, built_archive: Path, tmp_path: Path) -> None:
    """Extract, symlink the executable into a bin folder, and run it through the symlink."""
    lib = tmp_path / "lib"
    lib.mkdir()
    run([require_tool("tar"), "-xzf", str(built_archive), "-C", str(lib)])
    extracted = lib / f"{NAME}-{__version__}-{onedir_platform(onedir)}" / NAME
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / NAME).symlink_to(extracted / NAME)
    env, _home = throwaway_env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    version = run([NAME, "version"], env=env)
    assert __version__ in version.stdout
    listed = run([NAME, "list"], env=env, input_text="")
    assert json.loads(listed.stdout) == {}


@posix_only
def test_archive_refuses_a_stale_or_foreign_build(tmp_path: Path) -> None:
    require_tool("bash")
    out = tmp_path / "dist"
    stale = fake_onedir(tmp_path / "stale", says=f"{NAME} 0.0.1")
    proc = subprocess.run(["bash", str(ARCHIVE), "-o", str(out), str(stale), "linux-x86_64"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "not version" in proc.stderr and "rebuild" in proc.stderr
    # a Linux-shaped folder is not a Windows build
    proc = subprocess.run(["bash", str(ARCHIVE), "-o", str(out), str(fake_onedir(tmp_path / "linux")), "windows-x64"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"{NAME}.exe is missing" in proc.stderr
    proc = subprocess.run(["bash", str(ARCHIVE), "-o", str(out), str(tmp_path / "linux" / NAME), "solaris-sparc"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "unknown platform" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


@posix_only
def test_archive_names_the_platform_the_executable_is_built_for(tmp_path: Path) -> None:
    """The platform comes from the executable's header, not from the machine that packs it: an arm64 build
    packed on x86_64 is linux-arm64, and an x86_64 build is never shipped under the arm64 name."""
    require_tool("bash")
    out = tmp_path / "dist"
    elf = bytearray(64)
    elf[:4], elf[4], elf[5] = b"\x7fELF", 2, 1  # ELFCLASS64, little-endian
    for arch, machine in (("arm64", 0xB7), ("x86_64", 0x3E)):
        folder = fake_onedir(tmp_path / arch)
        exe = folder / NAME
        exe.write_bytes(bytes(elf[:18]) + machine.to_bytes(2, "little") + bytes(elf[20:]))
        exe.chmod(0o755)
        made = run(["bash", str(ARCHIVE), "--no-run", "-o", str(out), str(folder)])
        system = this_platform().partition("-")[0]
        assert Path(last_line(made.stdout)).name == f"{NAME}-{__version__}-{system}-{arch}.tar.gz"
        other = "x86_64" if arch == "arm64" else "arm64"
        proc = subprocess.run(["bash", str(ARCHIVE), "--no-run", "-o", str(out), str(folder), f"linux-{other}"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert f"built for {arch}, not for linux-{other}" in proc.stderr


@posix_only
def test_windows_zip_layout(tmp_path: Path) -> None:
    """The windows-x64 archive is a zip of the same layout (packed here from a fake onedir)."""
    require_tool("bash")
    out = tmp_path / "dist"
    folder = fake_onedir(tmp_path / "win", exe_name=f"{NAME}.exe")
    made = run(["bash", str(ARCHIVE), "-o", str(out), str(folder), "windows-x64"])
    base = f"{NAME}-{__version__}-windows-x64"
    archive = Path(last_line(made.stdout))
    assert archive == out.resolve() / f"{base}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = {n.rstrip("/") for n in zf.namelist()}
        assert zf.read(f"{base}/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert {f"{base}/LICENSE", f"{base}/INSTALL.txt", f"{base}/{NAME}/{NAME}.exe",
            f"{base}/{NAME}/_internal/base_library.zip"} <= names
    assert all(n == base or n.startswith(base + "/") for n in names)
    check_sums(out, archive.name)

    # another platform's archive adds a line; packing again replaces its line instead of adding one
    other = run(["bash", str(ARCHIVE), "-o", str(out), str(fake_onedir(tmp_path / "linux")), "linux-arm64"])
    run(["bash", str(ARCHIVE), "-o", str(out), str(folder), "windows-x64"])
    assert sorted(name for _digest, name in sums_lines(out / "SHA256SUMS")) == \
        sorted([archive.name, Path(last_line(other.stdout)).name])
    check_sums(out, archive.name)


# --- the .deb ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_deb(onedir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """packaging/deb/build-deb run once on the onedir build (gzip: the release's xz takes ~40 s more)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Debian packages are built on Linux")
    require_tool("dpkg-deb")
    require_tool("dpkg")
    out = tmp_path_factory.mktemp("deb") / "dist"
    made = run(["bash", str(BUILD_DEB), "-o", str(out), "-Z", "gzip", str(onedir)])
    deb = Path(last_line(made.stdout))
    arch = deb_arch(onedir)  # the build's, not this machine's: an arm64 build packed here is an arm64 package
    assert deb.parent == out.resolve() and deb.name.startswith(f"{NAME}_") and deb.name.endswith(f"_{arch}.deb")
    return deb


@posix_only
@linux_only
def test_deb_metadata_and_contents(onedir: Path, built_deb: Path, tmp_path: Path) -> None:
    deb = built_deb
    info = run(["dpkg-deb", "--info", str(deb)]).stdout
    fields = dict(re.findall(r"^ ([A-Z][A-Za-z-]+): (.*)$", info, re.MULTILINE))
    assert fields["Package"] == NAME
    # PEP 440 pre-releases sort before the release in Debian's order only with a tilde: 1.0rc1 -> 1.0~rc1
    debian_version = re.sub(r"\.?(a|b|rc|dev)(\d)", r"~\1\2", __version__, count=1).replace(".post", "+post")
    assert fields["Version"] == debian_version
    assert fields["Architecture"] == deb_arch(onedir)
    # libc6 (>= the newest GLIBC version the build's ELF files need), read with readelf whatever the architecture
    assert re.fullmatch(r"libc6 \(>= 2\.\d+(\.\d+)?\)", fields.get("Depends", "")), fields.get("Depends")
    assert re.fullmatch(r".+ <[^<>@\s]+@[^<>@\s]+>", fields["Maintainer"])
    assert fields["Description"].strip()
    assert "python" not in fields.get("Depends", "").lower()
    assert "python" not in fields.get("Pre-Depends", "").lower()

    contents = run(["dpkg-deb", "--contents", str(deb)]).stdout.splitlines()
    entries: dict[str, tuple[str, str, str]] = {}  # path -> (mode, owner, symlink target)
    for line in contents:
        mode, owner, _size, _date, _time, rest = line.split(None, 5)
        path, _arrow, target = rest.partition(" -> ")
        entries[path.rstrip("/")] = (mode, owner, target)
    assert all(owner == "root/root" for _mode, owner, _target in entries.values())
    lib = f"./usr/lib/{NAME}"
    assert entries[f"./usr/bin/{NAME}"][0].startswith("l")
    assert entries[f"./usr/bin/{NAME}"][2] == f"../lib/{NAME}/{NAME}"
    assert entries[f"{lib}/{NAME}"][0] == "-rwxr-xr-x"
    assert f"./usr/share/doc/{NAME}/copyright" in entries
    shipped = {p[len(lib) + 1:] for p, (mode, _o, _t) in entries.items() if p.startswith(lib + "/") and mode[0] != "d"}
    assert shipped == files_under(onedir)

    unpacked = tmp_path / "unpacked"
    run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    copyright_text = (unpacked / "usr/share/doc" / NAME / "copyright").read_text()
    assert "License: MIT" in copyright_text
    for line in (ROOT / "LICENSE").read_text().splitlines():
        if line.strip():
            assert " " + line in copyright_text
    check_sums(deb.parent, deb.name)


def install_root(arch: str) -> Path:
    """Where a package of `arch` can be installed: / when it is this machine's architecture, else the arm64
    Debian root SWITCHBOARD_ARM64_ROOT names (build/binary-arm64's, whose programs qemu-user runs)."""
    if arch == run(["dpkg", "--print-architecture"]).stdout.strip():
        return Path("/")
    if not (arch == "arm64" and ARM64_ROOT and (Path(ARM64_ROOT) / "usr/bin/dpkg").exists()):
        pytest.skip(f"an {arch} package installs only on {arch} Debian: SWITCHBOARD_ARM64_ROOT names an arm64 "
                    "Debian root (build/test --arm64 sets it) to install an arm64 one there under emulation")
    said = run([require_tool("chroot"), ARM64_ROOT, "dpkg", "--print-architecture"]).stdout.strip()
    if said != arch:
        pytest.skip(f"SWITCHBOARD_ARM64_ROOT={ARM64_ROOT} is an {said} root, not {arch}")
    return Path(ARM64_ROOT)


@posix_only
@linux_only
def test_deb_installs_and_round_trips(onedir: Path, built_deb: Path, tmp_path: Path) -> None:
    """dpkg -i, then store/get/list/erase/version through /usr/bin with a throw-away HOME, then dpkg -r.
    A package for another architecture (arm64 on x86_64) goes into that architecture's Debian root, where the
    same steps run in a chroot, under emulation."""
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root")
    deb = built_deb
    sysroot = install_root(deb_arch(onedir))
    inside = [] if sysroot == Path("/") else [require_tool("chroot"), str(sysroot)]
    status = subprocess.run([*inside, "dpkg-query", "-W", "-f", "${Status}", NAME], capture_output=True, text=True)
    if "installed" in status.stdout.split():
        pytest.skip(f"{NAME} is already installed from a package here; the test will not replace it")
    installed = Path("/usr/bin") / NAME                       # as the installed system sees it
    on_disk = sysroot / installed.relative_to("/")            # as this process sees it
    if inside:  # the package and the throw-away HOME must be inside the root, where the commands run
        staging = Path(tempfile.mkdtemp(prefix="switchboard-deb-", dir=sysroot / "tmp"))
        shutil.copy(deb, staging / deb.name)
        deb_path = "/" + str((staging / deb.name).relative_to(sysroot))
        env, home = throwaway_env(staging)
        outside_home = home
        home = Path("/" + str(home.relative_to(sysroot)))
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
                   XDG_CACHE_HOME=str(home / ".cache"))
    else:
        deb_path = str(deb)
        env, home = throwaway_env(tmp_path)
        outside_home = home
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    key = "registry.example.com"
    stored = {"ServerURL": key, "Username": "me", "Secret": "s3cret"}
    helper = [*inside, str(installed)]
    try:
        run([*inside, "dpkg", "-i", deb_path], env=env)
        assert on_disk.is_symlink()
        version = run([*helper, "version"], env=env)
        assert __version__ in version.stdout
        run([*helper, "store"], env=env, input_text=json.dumps(stored))
        got = run([*helper, "get"], env=env, input_text=key)
        assert json.loads(got.stdout) == stored
        listed = run([*helper, "list"], env=env, input_text="")
        assert json.loads(listed.stdout) == {key: "me"}
        assert (outside_home / ".local/share" / NAME).is_dir(), "the installed helper did not keep its store in HOME"
        run([*helper, "erase"], env=env, input_text=key)
        gone = subprocess.run([*helper, "get"], env=env, input=key, capture_output=True, text=True, timeout=60)
        assert (gone.returncode, gone.stdout.strip()) == (1, NOT_FOUND)
    finally:
        removed = subprocess.run([*inside, "dpkg", "-r", NAME], env=env, capture_output=True, text=True, timeout=300)
        if inside:
            shutil.rmtree(staging, ignore_errors=True)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not on_disk.exists() and not on_disk.is_symlink()
    assert not (sysroot / "usr/lib" / NAME).exists()


# --- Homebrew formula and Scoop manifest ---------------------------------------------------------------

PLATFORMS = {"linux-x86_64": "tar.gz", "linux-arm64": "tar.gz", "darwin-arm64": "tar.gz",
             "darwin-x86_64": "tar.gz", "windows-x64": "zip"}
BASE_URL = f"https://github.com/example/{NAME}/releases/download/v1.2.3"


def release_sums(path: Path, version: str = "1.2.3", skip: str = "") -> dict[str, str]:
    """A SHA256SUMS as the release job concatenates it (archives and a .deb); platform -> hash."""
    digests = {p: hashlib.sha256(p.encode()).hexdigest() for p in PLATFORMS if p != skip}
    lines = [f"{digests[p]}  {NAME}-{version}-{p}.{PLATFORMS[p]}" for p in digests]
    lines.append(f"{'0' * 64}  {NAME}_{version}_amd64.deb")
    lines.append(f"{'1' * 64}  {NAME}_{version}_arm64.deb")
    path.write_text("\n".join(lines) + "\n")
    return digests


def test_generate_manifests(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    digests = release_sums(sums)
    out = tmp_path / "out"
    made = run([sys.executable, str(GENERATOR), str(sums), "1.2.3", BASE_URL, "--out", str(out)])
    formula_path, manifest_path = out / f"{NAME}.rb", out / f"{NAME}.json"
    assert made.stdout.splitlines() == [str(formula_path), str(manifest_path)]

    formula = formula_path.read_text()
    assert "class DockerCredentialSwitchboard < Formula" in formula
    assert 'version "1.2.3"' in formula
    assert f'homepage "https://github.com/example/{NAME}"' in formula
    pair = r'\s+url "([^"]+)"\s+sha256 "([^"]+)"\s+end'
    block = r"on_{os} do\s+on_arm do" + pair + r"\s+on_intel do" + pair
    for os_name, arm, intel in (("macos", "darwin-arm64", "darwin-x86_64"), ("linux", "linux-arm64", "linux-x86_64")):
        match = re.search(block.format(os=os_name), formula)
        assert match, f"no on_{os_name} block with on_arm and on_intel"
        assert match.groups() == (f"{BASE_URL}/{NAME}-1.2.3-{arm}.tar.gz", digests[arm],
                                  f"{BASE_URL}/{NAME}-1.2.3-{intel}.tar.gz", digests[intel])
    assert f'libexec.install "{NAME}"' in formula
    assert f'bin.install_symlink libexec/"{NAME}/{NAME}"' in formula
    assert re.search(r'test do\n.*shell_output\("#\{bin\}/' + NAME + r' version"\)', formula)
    assert not re.search(r"@[A-Z0-9_]+@", formula)
    ruby = shutil.which("ruby")
    if ruby:
        assert "Syntax OK" in run([ruby, "-c", str(formula_path)]).stdout

    manifest = json.loads(manifest_path.read_text())
    assert manifest["version"] == "1.2.3"
    assert manifest["architecture"]["64bit"] == {
        "url": f"{BASE_URL}/{NAME}-1.2.3-windows-x64.zip",
        "hash": digests["windows-x64"],
        "extract_dir": f"{NAME}-1.2.3-windows-x64",
    }
    assert manifest["bin"] == f"{NAME}\\{NAME}.exe"
    assert manifest["checkver"] == {"github": f"https://github.com/example/{NAME}"}
    update = manifest["autoupdate"]
    assert update["architecture"]["64bit"]["url"] == \
        f"https://github.com/example/{NAME}/releases/download/v$version/{NAME}-$version-windows-x64.zip"
    assert update["hash"]["url"] == "$baseurl/SHA256SUMS"
    assert "1.2.3" not in json.dumps(update)


def test_generate_manifests_refuses_an_incomplete_release(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    release_sums(sums, skip="darwin-x86_64")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(GENERATOR), str(sums), "1.2.3", BASE_URL, "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"not in SHA256SUMS: {NAME}-1.2.3-darwin-x86_64.tar.gz" in proc.stderr
    assert not out.exists()

    sums.write_text("this is not a checksum line\n")
    proc = subprocess.run([sys.executable, str(GENERATOR), str(sums), "1.2.3", BASE_URL, "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "SHA256SUMS:1:" in proc.stderr
    proc = subprocess.run([sys.executable, str(GENERATOR), str(sums), "v1.2.3", BASE_URL, "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not v0.1.0" in proc.stderr
