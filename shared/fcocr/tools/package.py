"""``fcocr package``: the deployable code of the Function Compute functions, built for FC's python3.10.

Layout: one dependency tree, one zip per function::

    build/site/               fcocr and its runtime dependencies, installed for FC by pip --target
    build/fc-runtime/         an emulated FC python3.10 runtime: its built-in modules (kept between builds)
    build/<function>.zip      build/site + functions/<function>/index.py at the root: template.yml's CodeUri
    build/template.yml        (--code-bucket) template.yml (FC 3.0) with code oss://bucket/prefix<function>-<hash>.zip
    build/fc2/template.yml    (--code-bucket, python3.10) deploy/fc2/template.yml with CodeUri on OSS

The three functions run the same library, so they get the same tree; a zip differs only by its
``index.py``. What goes in:

* fcocr itself, from a wheel built from this checkout (``pip wheel``): the package and its data,
  never the tests;
* the runtime dependencies of the recognizers the routes name, and nothing else: every deployment
  gets the core (PyYAML, Pillow), oss2 and pypdfium2; ``aliyun.*`` adds the OpenAPI client,
  ``tencent.*`` the slim Tencent OCR SDK (``tencentcloud-sdk-python-ocr`` + ``-common``, never the
  full SDK), ``green.*`` the Content Security SDK, ``market.*`` requests; the offline engine
  (rapidocr, onnxruntime, OpenCV) only when a route names ``local.*``;
* installed for FC's platform: CPython 3.10 on Debian 10 (glibc 2.28), so binary wheels tagged
  manylinux2014 or manylinux_2_x up to 2_28 (``--only-binary=:all:``). Dependencies published only
  as source (oss2, the aliyun-python-sdk-* packages, crcmod) are pure Python: they are built into
  wheels first, with no C compiler (a crcmod the zip carried would take its pure-Python fallback);
* minus what FC's python3.10 runtime already provides (``FC_BUILTINS``, its documented built-in modules;
  ``split_for_fc``): a distribution is left out when FC's documented version meets every requirement
  the zip's contents have on it, or when only such left-out distributions need it (FC has their
  dependencies). oss2 2.16.0 and requests 2.28.1 are FC's, and with them cryptography, pycryptodome,
  crcmod, aliyun-python-sdk-core/-kms, urllib3, idna, certifi, charset-normalizer, six, jmespath. Pillow
  is not (fcocr needs 10.1, FC has 9.3.0). The zip never carries cryptography: FC's pyOpenSSL would be
  imported with it (``FC_IMPLICIT_IMPORTS``), so the SDKs' requirements on it are met by FC's copy, within
  the range ``FC_DEPENDENCY_RANGES`` gives and explains;
* then pruned by the rules in ``PRUNE`` (each with its reason), and vendored shared libraries that
  nothing left links to are dropped (``orphaned_libraries``).

``--verify PYTHON3.10`` imports the handlers and SDKs from each zip with the emulated runtime after it
on sys.path, as FC orders them, and decodes every accepted format.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import fnmatch
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

# function name -> its handler's directory in the repository (index.py goes to the zip's root).
FUNCTIONS = {
    "ocr_upload": "functions/ocr_upload",
    "scan_callback": "functions/scan_callback",
    "scan_reconcile": "functions/scan_reconcile",
}

FC_PYTHON = "3.10"
# FC's python3.10 runtime is Debian 10 (glibc 2.28), x86_64: any manylinux wheel up to glibc 2.28 runs there.
FC_PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
BUDGET_MB = 10.0
# PEP 508 marker variables of FC's python3.10 runtime (CPython 3.10 on Linux x86_64).
FC_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython", "implementation_version": "3.10.13", "os_name": "posix",
    "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_system": "Linux",
    "python_full_version": "3.10.13", "python_version": FC_PYTHON, "sys_platform": "linux",
    "platform_release": "", "platform_version": "", "extra": "",
}

# Which requirement of fcocr's extras goes where ("base": every deployment; "cli": never on FC). Each family
# declares its own (``Family.packaging.requirements``); these are the core's and the operator tools'.
# tests/test_package.py checks that every requirement of the cloud and local extras is placed.
CORE_REQUIREMENT_GROUPS = {
    "oss2": "base",  # storage: every function reads and writes OSS
    "pypdfium2": "base",  # PDF page counts and rendering: needed by every family
    # FCOCR_NOTIFY=mns:topic/NAME publishes through the MNS SDK: FC python3.12 ships none that can publish, and
    # python3.10's aliyun-mns is another distribution of the same module, so every zip carries this small one.
    "aliyun-mns-sdk": "base",
    "aliyun-fc2": "cli",  # fcocr backfill --remote invokes the function from your machine: never needed on FC
    "alibabacloud-fc20230330": "cli",  # the same for FC 3.0
}


def requirement_groups() -> dict[str, str]:
    from ..recognizers import families

    groups = dict(CORE_REQUIREMENT_GROUPS)
    for family in families():
        for name in family.packaging.requirements:
            groups.setdefault(name, family.name)
    return groups


def family_names() -> tuple[str, ...]:
    from ..recognizers import FAMILY_MODULES

    return tuple(FAMILY_MODULES)


PACKAGED_EXTRAS = ("oss", "cloud", "local", "notify")


@dataclasses.dataclass(frozen=True)
class Rule:
    pattern: str  # fnmatch on the path relative to the tree, '/'-separated; a directory goes whole
    reason: str


PRUNE: tuple[Rule, ...] = (
    Rule("*/__pycache__", "bytecode of the build machine's Python, not FC's: FC compiles what it imports"),
    Rule("__pycache__", "bytecode of the build machine's Python"),
    Rule("bin", "console scripts: nothing runs them on FC"),
    Rule("*.dist-info/RECORD", "pip's uninstall list: nothing installs or uninstalls on FC"),
    Rule("*.dist-info/INSTALLER", "pip bookkeeping"),
    Rule("*.dist-info/REQUESTED", "pip bookkeeping"),
    Rule("*.dist-info/direct_url.json", "pip bookkeeping"),
    Rule("fcocr/samples", "the demo documents of `fcocr demo`: never read on FC"),
    Rule("fcocr/tools", "the operator tools (fcocr command, backfill, packaging, sample generator): never on FC"),
    Rule("*/tests", "a dependency's own test suite"),
    Rule("*/test_*.py", "a dependency's own tests"),
    Rule("crcmod/test.py", "crcmod's tests"),
    Rule("Crypto/SelfTest", "pycryptodome's self-test suite"),
    # pycryptodome is there because oss2 imports it for client-side encryption, which fcocr never uses.
    # `import oss2` loads AES, PKCS#1, SHA-1/256 and the bignum modules; these public-key and cipher
    # back ends are loaded only by the algorithms that need them (ECC, EdDSA, ML-DSA/ML-KEM, scrypt, DES,
    # bcrypt), none of which oss2 or fcocr calls. `fcocr package --verify` imports oss2 with what is left.
    # (FC's runtime provides oss2 and pycryptodome, so a zip carries them only when fcocr needs a newer oss2.)
    Rule("Crypto/PublicKey/_ec_*.so", "pycryptodome ECC back end: no elliptic-curve crypto in oss2's use"),
    Rule("Crypto/PublicKey/_ed*.so", "pycryptodome EdDSA"),
    Rule("Crypto/PublicKey/_curve*.so", "pycryptodome X25519/X448"),
    Rule("Crypto/PublicKey/_ml*.so", "pycryptodome ML-DSA / ML-KEM (post-quantum)"),
    Rule("Crypto/Protocol/_scrypt.*.so", "pycryptodome scrypt"),
    Rule("Crypto/Cipher/_raw_des*.so", "pycryptodome DES / 3DES"),
    Rule("Crypto/Cipher/_raw_eksblowfish.*.so", "pycryptodome bcrypt"),
    Rule("*.pyi", "type stubs"),
    Rule("*.pyx", "Cython sources of compiled modules"),
    Rule("*.pxd", "Cython sources"),
    Rule("*.pxi", "Cython sources"),
    Rule("*.c", "C sources of compiled modules"),
    Rule("*.h", "C headers"),
    # Pillow: formats and features fcocr never uses. Each is an optional module that Pillow imports
    # inside try/except (the plugin reports the format unsupported), so the core keeps working.
    Rule("PIL/_avif.*.so", "AVIF: not a format fcocr accepts (its AV1 codecs are most of Pillow's size)"),
    Rule("PIL/_imagingft.*.so", "FreeType text rendering: fcocr draws no text"),
    Rule("PIL/_imagingcms.*.so", "ICC colour management (ImageCms): fcocr does not convert profiles"),
    Rule("PIL/_imagingtk.*.so", "Tk display"),
    # Speedups with a pure-Python fallback that the package itself selects when they are absent.
    Rule("yaml/_yaml.*.so", "libyaml binding: yaml.safe_load, what fcocr calls, is the pure-Python loader"),
    Rule("_yaml", "the libyaml binding's shim package"),
    Rule("aiohttp/*.so", "aiohttp's C speedups (pure-Python fallback): fcocr's SDK calls are synchronous"),
    Rule("aiohttp/_websocket/*.so", "aiohttp's C speedups (pure-Python fallback)"),
    Rule("multidict/*.so", "C speedup with a pure-Python fallback"),
    Rule("yarl/*.so", "C speedup with a pure-Python fallback"),
    Rule("frozenlist/*.so", "C speedup with a pure-Python fallback"),
    Rule("propcache/*.so", "C speedup with a pure-Python fallback"),
)


class PackageError(Exception):
    pass


# ------------------------------------------------------------------------------------------ requirements
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;\s*(.*))?$")
_EXTRA_MARKER = re.compile(r"""^extra\s*==\s*["']([^"']+)["']$""")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Requirement:
    name: str  # canonical
    spec: str  # "oss2>=2.18" as pip takes it
    extra: str | None  # None: a core dependency


def parse_requires_dist(lines: Iterable[str]) -> list[Requirement]:
    """Requires-Dist values of a wheel's METADATA. Only core and ``extra == "x"`` markers are expected."""
    out = []
    for line in lines:
        match = _REQUIREMENT.match(line)
        if not match:
            raise PackageError(f"cannot read the requirement {line!r}")
        name, extras, version, marker = match.groups()
        extra = None
        if marker:
            extra_match = _EXTRA_MARKER.match(marker.strip())
            if not extra_match:
                raise PackageError(f"unexpected environment marker in {line!r}: fcocr's own extras only")
            extra = extra_match.group(1)
        out.append(Requirement(canonical(name), f"{name}{extras or ''}{version}", extra))
    return out


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        metadata = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.parser.Parser().parsestr(z.read(metadata).decode("utf-8"))
    return parse_requires_dist(message.get_all("Requires-Dist") or [])


def providers_for_routes(spec: str | None) -> set[str]:
    """The recognizer families the routes name (``spec`` as FCOCR_ROUTES takes it; None: the shipped routes)."""
    from ..routing import Router

    return {route.recognizer.split(".", 1)[0] for route in Router.load(spec).routes}


def select(requirements: Sequence[Requirement], providers: Iterable[str]) -> list[str]:
    """The pip requirement strings a deployment for ``providers`` needs."""
    providers = set(providers)
    unknown = providers - set(family_names())
    if unknown:
        raise PackageError(f"unknown recognizer families {sorted(unknown)} (known: {', '.join(family_names())})")
    groups = requirement_groups()
    wanted: dict[str, str] = {}
    for req in requirements:
        if req.extra is None:
            wanted.setdefault(req.name, req.spec)
            continue
        if req.extra not in PACKAGED_EXTRAS:
            continue  # dev tools
        group = groups.get(req.name)
        if group is None:
            raise PackageError(f"{req.spec} (extra {req.extra!r}) is needed by no recognizer family's packaging "
                               "(Family.packaging.requirements) nor by the core (CORE_REQUIREMENT_GROUPS)")
        if group == "base" or group in providers:  # "cli": never
            wanted.setdefault(req.name, req.spec)
    return [wanted[name] for name in sorted(wanted)]


# ------------------------------------------------------------------------------------------ FC's runtime
# What FC's python3.10 runtime ships besides the standard library, as Alibaba Cloud documents it: "Python
# runtimes", section "Built-in modules", table "Python 3.10":
#   https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/runtime-overview-2
#   (the same table: https://help.aliyun.com/zh/functioncompute/runtime-overview-2)
# FC puts the function's code first on sys.path and these after it: a distribution in the zip shadows FC's
# copy, one left out of the zip is FC's. Name as the table spells it -> version (None: no usable version).
# `fcocr package` builds an emulated copy (build/fc-runtime) from this table for its checks and --verify.
FC_BUILTINS: dict[str, str | None] = {
    "oss2": "2.16.0",
    "tablestore": "5.4.1",
    "aliyun-fc2": "2.5.2",
    "aliyun-python-sdk-ecs": "4.24.26",
    "aliyun-python-sdk-vpc": "3.0.27",
    "aliyun-python-sdk-rds": "2.7.2",
    "aliyun-python-sdk-kms": "2.16.0",
    "aliyun-mns": "1.1.5",
    "aliyun-python-sdk-cdn": "3.7.8",
    "aliyun-python-sdk-ram": "3.2.0",
    "aliyun-python-sdk-sts": "3.1.0",
    "aliyun-python-sdk-iot": "8.47.0",
    "aliyun-log-python-sdk": "0.8.0",
    "wand": "0.6.10",
    "scrapy": "2.7.1",
    "PyMySQL": "1.0.2",
    "elasticsearch": "8.5.2",
    "Pillow": "9.3.0",
    # The table says 1.0.2, which no pyOpenSSL release is (0.15.1 is followed by 16.0.0): its version is unknown.
    "pyOpenSSL": None,
    "redis": "4.4.0",
    "requests": "2.28.1",
}

# The documented modules bring their own dependencies (oss2: crcmod, pycryptodome, aliyun-python-sdk-kms and
# -core, six, requests; aliyun-python-sdk-core: cryptography, jmespath; requests: urllib3, idna, certifi,
# charset-normalizer; pyOpenSSL: cryptography, ...), at versions the docs do not give. A requirement in the zip
# is never left to one of those, except where the range below bounds FC's copy: every version in it must
# satisfy the requirement. name -> (lowest possible, first impossible, why).
FC_DEPENDENCY_RANGES: dict[str, tuple[str, str, str]] = {
    # The zip must not carry cryptography at all (FC_IMPLICIT_IMPORTS: FC's pyOpenSSL is imported with whatever
    # cryptography comes first on sys.path, and a pyOpenSSL older than the zip's cryptography fails to import,
    # which fails `import oss2`), so the aliyun.* and green.* SDKs' `cryptography>=3.0.0` (and the OpenAPI
    # client's `<51`) must be met by FC's; split_for_fc refuses a zip that would carry one. Both bounds follow
    # from the documented modules' own requirements, assuming FC's site satisfies them, as pip leaves a site
    # it installs together (FC's python3.9 site, listed in full in aliyun/fc-docker's
    # python3.9/base/requirements.txt, does: cryptography 36.0.0 with pyOpenSSL 21.0.0 and Scrapy 2.5.1).
    # FC's pyOpenSSL must import with it, and every pyOpenSSL release so far caps cryptography below 51
    # (22.1.0: <39, 24.2.1: <44, 26.4.0, the newest when this was written: <51). Not verified on FC itself:
    # `--verify` runs with the emulated runtime's copy, the newest in the range.
    "cryptography": ("3.3", "51", ("scrapy 2.7.1 requires cryptography>=3.3 and pyOpenSSL>=21.0.0 (which requires "
                                   "cryptography>=3.3); no pyOpenSSL release accepts cryptography 51 or later")),
}

# Imports that no metadata declares: when the key is imported, so is the value if installed (FC's copy).
FC_IMPLICIT_IMPORTS: dict[str, tuple[str, ...]] = {
    # aliyunsdkcore.vendored.requests (requests 2.18.3) runs `from .packages.urllib3.contrib import pyopenssl`
    # at import, catching only ImportError: with FC's pyOpenSSL installed, `import oss2` (oss2.crypto imports
    # aliyunsdkcore) imports FC's pyOpenSSL, and an AttributeError from a pyOpenSSL that does not match the
    # cryptography found first (measured: pyOpenSSL 22.1.0, 23.2.0 and 24.2.1 with cryptography 50) fails it.
    "aliyun-python-sdk-core": ("pyopenssl",),
}


# python3.10's tables; `use_runtime` swaps in another runtime's (fcocr.fc_runtimes) for one build.
PYTHON310_BUILTINS = dict(FC_BUILTINS)
PYTHON310_DEPENDENCY_RANGES = dict(FC_DEPENDENCY_RANGES)
PYTHON310_IMPLICIT_IMPORTS = dict(FC_IMPLICIT_IMPORTS)
FC_RUNTIME = "python3.10"  # the runtime the tables above describe right now


@contextlib.contextmanager
def use_runtime(name: str):
    """Build for FC's ``name`` runtime (python3.10, python3.12) inside the block: its Python, platform and modules."""
    from .fc_runtimes import runtime

    target = runtime(name)
    names = ("FC_RUNTIME", "FC_PYTHON", "FC_PLATFORMS")
    tables = (FC_MARKER_ENVIRONMENT, FC_BUILTINS, FC_DEPENDENCY_RANGES, FC_IMPLICIT_IMPORTS)
    saved = ({n: globals()[n] for n in names}, [dict(table) for table in tables])
    try:
        globals().update(FC_RUNTIME=target.name, FC_PYTHON=target.python, FC_PLATFORMS=target.platforms)
        for table, value in zip(tables, (target.marker_environment, target.builtins, target.dependency_ranges,
                                         target.implicit_imports), strict=False):
            table.clear()
            table.update(value)  # in place: read_distributions and missing_for_target default to these dicts
        yield target
    finally:
        globals().update(saved[0])
        for table, value in zip(tables, saved[1], strict=False):
            table.clear()
            table.update(value)


def _packaging():
    try:
        from packaging import requirements, specifiers, version
    except ImportError:  # pip, which runs the build, always carries it
        from pip._vendor.packaging import requirements, specifiers, version  # type: ignore[no-redef]
    return requirements, specifiers, version


def fc_builtin_versions() -> dict[str, str | None]:
    """FC_BUILTINS by canonical name."""
    return {canonical(name): version for name, version in FC_BUILTINS.items()}


def fc_runtime_requirements() -> list[str]:
    """What the emulated runtime installs: the documented modules at their versions, the ranges as constraints."""
    pins = [f"{name}=={version}" if version else name for name, version in FC_BUILTINS.items()]
    return pins + [f"{name}>={low},<{high}" for name, (low, high, _why) in FC_DEPENDENCY_RANGES.items()]


def range_satisfies(low: str, high: str, specifier) -> bool:
    """Whether every version v with low <= v < high satisfies ``specifier`` (a packaging SpecifierSet).

    Conservative: an operator this cannot decide for a whole range (==, ~=, ===, a wildcard !=) says no."""
    _, _, version = _packaging()
    low_v, high_v = version.Version(low), version.Version(high)
    for spec in specifier:
        op, text = spec.operator, spec.version
        if op in ("==", "~=", "===") or text.endswith(".*"):
            return False
        bound = version.Version(text)
        ok = {">=": bound <= low_v, ">": bound < low_v, "<": bound >= high_v, "<=": bound >= high_v,
              "!=": bound < low_v or bound >= high_v}[op]
        if not ok:
            return False
    return True


def fc_provides(name: str, specifier) -> str | None:
    """How FC's copy of ``name`` meets ``specifier`` (None: it does not, or that cannot be known)."""
    version = fc_builtin_versions().get(name)
    if version:
        return f"{version} (documented)" if specifier.contains(version, prereleases=True) else None
    if name in FC_DEPENDENCY_RANGES:
        low, high, _why = FC_DEPENDENCY_RANGES[name]
        return f">={low},<{high}" if range_satisfies(low, high, specifier) else None
    return None


def _has_upper_bound(specifier) -> bool:
    return any(s.operator in ("<", "<=", "==", "~=", "===", "!=") for s in specifier)


@dataclasses.dataclass(frozen=True)
class Dist:
    name: str  # canonical
    version: str
    requires: tuple  # packaging Requirements whose markers hold on FC (extras not requested)
    info: Path | None = None  # the .dist-info directory


def read_distributions(site: Path, environment: dict[str, str] = FC_MARKER_ENVIRONMENT) -> dict[str, Dist]:
    """canonical name -> the distribution installed in ``site``, with the requirements that apply on FC."""
    requirements, _, _ = _packaging()
    out = {}
    for name, info in installed_distributions(site).items():
        message = email.parser.Parser().parsestr((info / "METADATA").read_text("utf-8"))
        requires = []
        for line in message.get_all("Requires-Dist") or []:
            req = requirements.Requirement(line)
            if req.marker is None or req.marker.evaluate(dict(environment, extra="")):
                requires.append(req)
        out[name] = Dist(name, str(message["Version"]), tuple(requires), info)
    return out


@dataclasses.dataclass
class Split:
    """What goes in the zip and what is left to FC's runtime."""
    kept: dict[str, Dist]  # in the zip
    left_out: dict[str, str]  # installed, not in the zip -> why
    from_fc: dict[str, str]  # FC's copies the zip's code imports -> what is known of their version


def split_for_fc(root: str, requirements: Sequence[str], site: dict[str, Dist], runtime: dict[str, Dist]) -> Split:
    """Which installed distributions the zip must carry, given what FC's python3.10 runtime provides.

    ``root`` (fcocr) and ``requirements`` (the plan's) are walked through ``site``'s metadata. A requirement
    FC's copy meets (``fc_provides``) is not followed: FC's copy serves it. What only such copies need stays
    out too: FC installed them with their own dependencies. Then the other way: FC's copies that the zip's
    code imports (through ``runtime``'s metadata, the emulated runtime, and FC_IMPLICIT_IMPORTS) get the
    zip's distributions wherever the zip has one, so each requirement they have on one must hold for the
    zip's version; for a copy of unknown version, any upper bound counts as broken (it moves with the
    version). A copy broken that way goes in the zip as well (pip resolved it with the rest), and the walk
    runs again; one that was not installed (nothing of fcocr's needs it) is an error.
    """
    requirements_mod, _, _ = _packaging()
    roots = [requirements_mod.Requirement(r) for r in requirements]
    documented = fc_builtin_versions()
    forced: set[str] = set()
    while True:
        kept: dict[str, Dist] = {root: site[root]}
        covered: dict[str, list[str]] = {}
        queue = [(root, r) for r in (*roots, *site[root].requires)]
        queue += [("FC's modules", requirements_mod.Requirement(n)) for n in sorted(forced)]
        while queue:
            requirer, req = queue.pop(0)
            name = canonical(req.name)
            if name in kept:
                continue
            how = None if name in forced else fc_provides(name, req.specifier)
            if how:
                need = f"{requirer}: {req.name}{req.specifier or ''}"
                if need not in covered.setdefault(name, []):
                    covered[name].append(need)
                continue
            if name not in site:
                raise PackageError(f"{requirer} requires {req}, which pip did not install")
            kept[name] = site[name]
            queue.extend((name, r) for r in site[name].requires)
        covered = {n: v for n, v in covered.items() if n not in kept}
        # FC's copies in use: what the covered requirements reach in FC's site, and the implicit imports.
        from_fc: dict[str, str] = {}
        stack = sorted(covered) + [t for k in sorted(kept) for t in FC_IMPLICIT_IMPORTS.get(k, ())]
        while stack:
            name = stack.pop()
            if name in kept or name in from_fc:
                continue
            dist = runtime.get(name)
            if documented.get(name):
                from_fc[name] = documented[name] or ""
            elif name in FC_DEPENDENCY_RANGES:
                low, high, _why = FC_DEPENDENCY_RANGES[name]
                from_fc[name] = f">={low},<{high}" + (f" (emulated: {dist.version})" if dist else "")
            else:
                from_fc[name] = "version unknown" + (f" (emulated: {dist.version})" if dist else "")
            if dist:
                stack.extend(canonical(r.name) for r in dist.requires)
            stack.extend(FC_IMPLICIT_IMPORTS.get(name, ()))
        conflicts = []
        for name in sorted(from_fc):
            dist = runtime.get(name)
            for req in dist.requires if dist else ():
                target = canonical(req.name)
                if target not in kept:
                    continue
                ours = kept[target].version
                ok = req.specifier.contains(ours, prereleases=True)
                if ok and not documented.get(name) and _has_upper_bound(req.specifier):
                    ok = False  # FC's copy is of another version than the emulated one: its caps are unknown
                if not ok:
                    conflicts.append((name, f"{req.name}{req.specifier}", target, ours))
        if not conflicts:
            break
        stuck = [c for c in conflicts if c[0] not in site]
        if stuck:
            raise PackageError("the zip would shadow what FC's own modules need: " + "; ".join(
                f"FC's {name} ({from_fc[name]}) requires {spec}, the zip has {target} {ours}"
                for name, spec, target, ours in stuck))
        if {c[0] for c in conflicts} <= forced:
            raise PackageError(f"cannot settle what goes in the zip: {conflicts}")
        forced |= {c[0] for c in conflicts}
    left_out = {}
    for name in sorted(site):
        if name in kept:
            continue
        if name in covered:
            version = documented.get(name)
            if not version:
                version = ">={},<{} (FC_DEPENDENCY_RANGES)".format(*FC_DEPENDENCY_RANGES[name][:2])
            left_out[name] = f"FC {FC_RUNTIME} has {version}, which meets " + ", ".join(covered[name])
        else:
            needers = sorted(d.name for d in site.values() if any(canonical(r.name) == name for r in d.requires))
            left_out[name] = (f"needed only by {', '.join(needers)}, left to FC (which has its dependencies)"
                              if needers else "needed by nothing in the zip")
    return Split(kept, left_out, from_fc)


def remove_distributions(site: Path, names: Iterable[str], dists: dict[str, Dist]) -> dict[str, int]:
    """Delete the files of ``names`` (their RECORD) that no other distribution in ``site`` lists: bytes per name."""
    names = set(names)

    def record(dist: Dist) -> set[Path]:
        text = (dist.info / "RECORD").read_text("utf-8") if dist.info and (dist.info / "RECORD").is_file() else ""
        paths = {(site / line.split(",", 1)[0]).resolve() for line in text.splitlines() if line.strip()}
        return {p for p in paths if p.is_relative_to(site.resolve())}

    keep = set().union(*(record(d) for n, d in dists.items() if n not in names))
    removed: dict[str, int] = {}
    for name in sorted(names):
        dist = dists[name]
        size = 0
        for path in sorted(record(dist) - keep):
            if path.is_file() or path.is_symlink():
                size += path.lstat().st_size
                path.unlink()
        if dist.info and dist.info.exists():
            size += _size(dist.info)
            shutil.rmtree(dist.info)
        removed[name] = size
    for dirpath, _dirnames, _filenames in sorted(os.walk(site), key=lambda w: -len(w[0])):
        if Path(dirpath) != site and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()
    return removed


# ------------------------------------------------------------------------------------------ pruning
def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.lstat().st_size


def prune(root: Path, rules: Sequence[Rule] = PRUNE) -> dict[str, int]:
    """Delete what the rules match under ``root``: bytes removed per rule (the first rule that matches counts)."""
    removed: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        here = Path(dirpath)
        for name in sorted(dirnames):
            rel = _rel(here / name, root)
            rule = next((r for r in rules if fnmatch.fnmatchcase(rel, r.pattern)), None)
            if rule:
                removed[rule.pattern] = removed.get(rule.pattern, 0) + _size(here / name)
                shutil.rmtree(here / name)
                dirnames.remove(name)
        for name in filenames:
            rel = _rel(here / name, root)
            rule = next((r for r in rules if fnmatch.fnmatchcase(rel, r.pattern)), None)
            if rule:
                removed[rule.pattern] = removed.get(rule.pattern, 0) + (here / name).lstat().st_size
                (here / name).unlink()
    return removed


def elf_needed(path: Path) -> list[str] | None:
    """DT_NEEDED entries of a 64-bit little-endian ELF file (what FC's x86_64 loads); None if not one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if off + 64 > len(data):
            return None
        _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link = struct.unpack_from("<IIQQQQI", data, off)
        sections.append((sh_type, sh_offset, sh_size, sh_link))
    needed = []
    for sh_type, sh_offset, sh_size, sh_link in sections:
        if sh_type != 6:  # SHT_DYNAMIC
            continue
        _t, str_offset, str_size, _l = sections[sh_link]
        strtab = data[str_offset:str_offset + str_size]
        for pos in range(sh_offset, sh_offset + sh_size - 15, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:  # DT_NULL
                break
            if tag == 1:  # DT_NEEDED
                end = strtab.index(b"\0", value)
                needed.append(strtab[value:end].decode("utf-8"))
    return needed


def orphaned_libraries(root: Path) -> list[Path]:
    """Shared libraries vendored by auditwheel (``<dist>.libs/``) that no remaining module needs, even indirectly."""
    vendored = {p.name: p for d in root.glob("*.libs") if d.is_dir() for p in d.iterdir() if p.is_file()}
    if not vendored:
        return []
    modules = [p for p in root.rglob("*.so*") if p.is_file() and p.parent.name[-5:] != ".libs"]
    pending = [n for m in modules for n in (elf_needed(m) or [])]
    used: set[str] = set()
    while pending:
        name = pending.pop()
        if name in vendored and name not in used:
            used.add(name)
            pending.extend(elf_needed(vendored[name]) or [])
    return sorted(p for n, p in vendored.items() if n not in used)


def prune_tree(root: Path) -> dict[str, int]:
    removed = prune(root)
    for lib in orphaned_libraries(root):
        key = f"{lib.parent.name}/ (no module links to it)"
        removed[key] = removed.get(key, 0) + lib.stat().st_size
        lib.unlink()
    return removed


# ------------------------------------------------------------------------------------------ zips
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _entries(site: Path, handler: Path) -> list[tuple[str, Path]]:
    entries = [(_rel(p, site), p) for p in site.rglob("*") if p.is_file()]
    entries = [(n, p) for n, p in entries if n != "index.py"]
    return sorted(entries + [("index.py", handler)])


def write_zip(target: Path, site: Path, handler: Path) -> Path:
    """A reproducible zip: sorted entries, fixed timestamps, 0644 (0755 for shared objects and executables)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, path in _entries(site, handler):
            info = zipfile.ZipInfo(name, _EPOCH)
            mode = 0o755 if (path.stat().st_mode & 0o111 or ".so" in PurePosixPath(name).suffixes) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)
    tmp.replace(target)
    return target


def contributors(zip_path: Path, top: int = 8) -> list[tuple[str, int]]:
    """The largest top-level entries of a zip, by compressed size."""
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            head = info.filename.split("/", 1)[0]
            sizes[head] = sizes.get(head, 0) + info.compress_size
    return sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ build
@dataclasses.dataclass
class Plan:
    providers: set[str]
    requirements: list[str]

    @property
    def needs_engine(self) -> bool:
        return "local" in self.providers

    def fc_provided(self) -> dict[str, str]:
        """The plan's requirements that FC python3.10's documented modules meet -> how (no download needed)."""
        requirements, _, _ = _packaging()
        out = {}
        for line in self.requirements:
            req = requirements.Requirement(line)
            version = fc_builtin_versions().get(canonical(req.name))
            if version and req.specifier.contains(version, prereleases=True):
                out[line] = f"FC has {version}"
        return out


@dataclasses.dataclass
class Built:
    plan: Plan
    zips: dict[str, Path]
    removed: dict[str, int]
    split: Split | None = None  # what was left to FC's runtime, and why
    left_out: dict[str, int] = dataclasses.field(default_factory=dict)  # bytes per distribution left out
    runtime: Path | None = None  # the emulated FC runtime (--verify imports with it)


def repository_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "functions").is_dir():
        raise PackageError(f"fcocr package runs from a checkout of the repository (no pyproject.toml at {root})")
    return root


def _pip(args: Sequence[str], env: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise PackageError(f"pip failed ({' '.join(cmd[3:5])} ...):\n{tail}")


def build_wheel(repo: Path, out: Path) -> Path:
    _pip(["wheel", "--no-deps", "--quiet", "-w", str(out), str(repo)])
    (wheel,) = out.glob("fcocr-*.whl")
    return wheel


def _marker_holds(marker: str, environment: dict[str, str]) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:  # pip, which runs the build, always carries it
        from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef]
    return bool(Marker(marker).evaluate(environment))


def installed_distributions(site: Path) -> dict[str, Path]:
    """canonical name -> its .dist-info directory."""
    out = {}
    for info in site.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        out[canonical(name)] = info
    return out


def missing_for_target(site: Path, environment: dict[str, str] = FC_MARKER_ENVIRONMENT) -> list[str]:
    """Requirements of the installed distributions that hold on FC's Python but are not installed.

    pip evaluates environment markers against the Python that runs it, not the one --python-version
    names: a dependency such as ``async-timeout; python_version < "3.11"`` is left out when a newer
    Python builds the package. This finds them for a second pass.
    """
    installed = installed_distributions(site)
    missing: dict[str, str] = {}
    for info in installed.values():
        message = email.parser.Parser().parsestr((info / "METADATA").read_text("utf-8"))
        for line in message.get_all("Requires-Dist") or []:
            spec, _, marker = line.partition(";")
            match = _REQUIREMENT.match(spec)
            if not match:
                continue
            name = canonical(match.group(1))
            if name in installed or name in missing:
                continue
            if marker.strip() and not _marker_holds(marker.strip(), environment):
                continue
            missing[name] = spec.strip()
    return [missing[name] for name in sorted(missing)]


def install_for_fc(wheel: Path | None, requirements: Sequence[str], site: Path, work: Path, cache: Path) -> None:
    """pip install --target for FC's CPython 3.10, binary wheels only; source-only dependencies built pure first."""
    wheelhouse = work / "wheelhouse"
    wheels = [str(wheel)] if wheel else []
    # 1. Wheels for the whole closure on this machine; an sdist-only dependency is built here with no C
    #    compiler (CC=false), so a package with an optional C extension (crcmod) builds pure-Python.
    #    A private cache keeps a compiled wheel of an earlier build from being picked instead.
    env = dict(os.environ, CC="false", CXX="false")
    _pip(["wheel", "--quiet", "--cache-dir", str(cache), "-w", str(wheelhouse), *wheels, *requirements], env)
    # 2. The real install, for FC: its binary wheels from the index, the pure ones from the wheelhouse.
    platforms = [arg for p in FC_PLATFORMS for arg in ("--platform", p)]
    target = ["install", "--quiet", "--no-compile", "--python-version", FC_PYTHON, "--implementation", "cp",
              *platforms, "--only-binary=:all:", "--find-links", str(wheelhouse), "--cache-dir", str(cache)]
    _pip([*target, "--target", str(site), *wheels, *requirements])
    # 3. What pip's own markers left out for FC's Python (see missing_for_target), until nothing is.
    for _ in range(5):
        missing = missing_for_target(site)
        if not missing:
            return
        extra = work / f"extra-{len(list(work.glob('extra-*')))}"
        _pip([*target, "--target", str(extra), *missing])
        for entry in extra.iterdir():
            if not (site / entry.name).exists():  # a dependency already in site stays as resolved there
                entry.rename(site / entry.name)
    raise PackageError(f"dependencies for CPython {FC_PYTHON} still missing: {', '.join(missing_for_target(site))}")


def plan(routes: str | None, extra_providers: Iterable[str] = (), wheel: Path | None = None,
         requirements: Sequence[Requirement] | None = None) -> Plan:
    providers = providers_for_routes(routes) | set(extra_providers)
    if requirements is None:
        if wheel is None:
            raise PackageError("plan needs the wheel or its requirements")
        requirements = wheel_requirements(wheel)
    return Plan(providers, select(requirements, providers))


def build(out: Path, *, routes: str | None = None, extra_providers: Iterable[str] = (),
          repo: Path | None = None, log=print) -> Built:
    repo = repo or repository_root()
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    if work.exists():
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    log("building the fcocr wheel from", repo)
    wheel = build_wheel(repo, work / "dist")
    the_plan = plan(routes, extra_providers, wheel=wheel)
    log("recognizer families:", ", ".join(sorted(the_plan.providers)) or "none")
    log("requirements:", " ".join(the_plan.requirements))
    site = out / "site"
    if site.exists():
        shutil.rmtree(site)
    log(f"installing for FC {FC_RUNTIME} (CPython {FC_PYTHON}, {FC_PLATFORMS[0]} and older) into {site}")
    install_for_fc(wheel, the_plan.requirements, site, work, out / ".pip-cache")  # the cache outlives a build
    runtime = out / ("fc-runtime" if FC_RUNTIME == "python3.10" else f"fc-runtime-{FC_RUNTIME}")
    if install_fc_runtime(runtime, work / "fc-runtime", out / ".pip-cache"):
        log(f"emulated FC's {FC_RUNTIME} runtime in {runtime}: its documented modules at their versions, and theirs")
    dists = read_distributions(site)
    split = split_for_fc("fcocr", the_plan.requirements, dists, read_distributions(runtime))
    left_out = remove_distributions(site, split.left_out, dists)
    removed = prune_tree(site)
    zips = {name: write_zip(out / f"{name}.zip", site, repo / src / "index.py") for name, src in FUNCTIONS.items()}
    shutil.rmtree(work, ignore_errors=True)
    return Built(the_plan, zips, removed, split, left_out, runtime)


def install_fc_runtime(runtime: Path, work: Path, cache: Path) -> bool:
    """An emulated FC python3.10 site: FC_BUILTINS at their versions, with their dependencies, installed for FC.

    The dependencies are what pip picks today within the documented modules' requirements (and
    FC_DEPENDENCY_RANGES), not necessarily FC's own, older copies. Kept between builds (a stamp of the
    requirements): False when the one there is current."""
    stamp = runtime / ".fcocr-fc-runtime"
    wanted = "\n".join(fc_runtime_requirements()) + "\n"
    if stamp.is_file() and stamp.read_text("utf-8") == wanted:
        return False
    shutil.rmtree(runtime, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    install_for_fc(None, fc_runtime_requirements(), runtime, work, cache)
    stamp.write_text(wanted, "utf-8")
    return True


# Run by --verify inside the unpacked zip: every format fcocr accepts still decodes after pruning.
_FORMAT_CHECK = """
import io, sys
from PIL import Image, features
for fmt in ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF"):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, fmt)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        im.load()
        assert im.size == (40, 30) and im.format == fmt, fmt
assert features.check_codec("libtiff") and features.check("webp")
import pypdfium2
pdf = pypdfium2.PdfDocument.new()
pdf.new_page(200, 100)
buf = io.BytesIO()
pdf.save(buf)
doc = pypdfium2.PdfDocument(buf.getvalue())
assert len(doc) == 1 and doc[0].render(scale=1).to_pil().size == (200, 100)
import oss2.utils, yaml
crc = oss2.utils.Crc64(0)
crc.update(b"123456789")
assert crc.crc == 0x995DC9BBDF1939FA, hex(crc.crc)  # CRC-64/XZ check value
assert yaml.safe_load("a: [1, 2]") == {"a": [1, 2]}
"""


# Run by --verify last: which of the modules that matter came from FC's runtime, which from the zip.
_ORIGINS = """
import sys
zip_dir, runtime = sys.argv[1], sys.argv[2]
names = ("oss2", "aliyunsdkcore", "PIL", "requests", "urllib3", "cryptography", "OpenSSL", "Crypto", "crcmod",
         "yaml", "pypdfium2", "alibabacloud_tea_openapi", "tencentcloud", "aliyunsdkgreen", "numpy", "cv2",
         "onnxruntime", "rapidocr")
origin = {"zip": [], "FC": []}
for name in names:
    module = sys.modules.get(name)
    where = getattr(module, "__file__", None) or ""
    if module is None or not where:
        continue
    version = getattr(module, "__version__", None) or getattr(module, "VERSION", None) or ""
    label = f"{name} {version}".strip() if isinstance(version, str) else name
    if where.startswith(zip_dir):
        origin["zip"].append(label)
    elif runtime and where.startswith(runtime):
        origin["FC"].append(label)
    else:
        raise SystemExit(f"{name} came from {where}: neither the zip nor the emulated runtime")
print("  from FC's runtime:", ", ".join(origin["FC"]) or "nothing")
print("  from the zip:", ", ".join(origin["zip"]) or "nothing")
"""


def verify_imports(zip_path: Path, python: str, modules: Sequence[str], runtime: Path | None = None) -> str:
    """Import ``modules`` from the unpacked zip with another interpreter (FC's version), isolated from its
    site-packages, and decode every accepted format with what is left after pruning.

    With ``runtime`` (the emulated FC runtime), its directory follows the zip's on sys.path, as on FC (the
    function's code first, the runtime's modules after): what the zip leaves to FC is imported from there."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp)
        runtime_dir = str(runtime.resolve()) if runtime else ""
        code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
                "sys.argv[2] and sys.path.append(sys.argv[2]); "
                "[importlib.import_module(m) for m in sys.argv[3:]]; "
                f"exec({_FORMAT_CHECK!r}); "
                "print(sys.version.split()[0], 'imported', len(sys.argv) - 3, 'modules; every format decodes'); "
                f"exec({_ORIGINS!r})")
        proc = subprocess.run([python, "-I", "-S", "-c", code, str(Path(tmp).resolve()), runtime_dir, *modules],
                              capture_output=True, text=True, check=False, cwd=tmp,
                              env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"})
        if proc.returncode != 0:
            where = " with the emulated FC runtime" if runtime else ""
            raise PackageError(f"{zip_path.name}: import failed under {python}{where}:\n{proc.stderr.strip()[-2000:]}")
        return proc.stdout.strip()


# Run by --verify for each zip: the function's handler called the way FC calls it, with FC's context emulated.
# python3.10's context carries the role's STS credentials; python3.12's has no `credentials` (FC puts them in
# ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET and ALIBABA_CLOUD_SECURITY_TOKEN). On a local bucket, ocr_upload gets a file
# that is no image (a permanent failure, written without calling a vendor), scan_callback a GET (405),
# scan_reconcile a tick with no bucket.
_HANDLER_CHECK = """
import json, os, sys, tempfile, types
zip_dir, runtime_dir, name, with_credentials = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
sys.path.insert(0, zip_dir)
runtime_dir and sys.path.append(runtime_dir)
import index
from fcocr.runtime import Runtime
function = types.SimpleNamespace(name=name, timeout=60, memory_size=512, handler="index.handler")
context = types.SimpleNamespace(request_id="verify-" + name, region="cn-shanghai", function=function)
sts = ("STS.verify-ak", "verify-secret", "verify-token")
if with_credentials:
    context.credentials = types.SimpleNamespace(access_key_id=sts[0], access_key_secret=sts[1], security_token=sts[2])
else:
    os.environ.update(ALIBABA_CLOUD_ACCESS_KEY_ID=sts[0], ALIBABA_CLOUD_ACCESS_KEY_SECRET=sts[1],
                      ALIBABA_CLOUD_SECURITY_TOKEN=sts[2])
creds = Runtime.from_context(context).credentials
assert creds and (creds.access_key_id, creds.access_key_secret, creds.security_token) == sts, creds
root = tempfile.mkdtemp()
os.environ["FCOCR_LOCAL_ROOT"] = root
os.makedirs(os.path.join(root, "bucket"))
with open(os.path.join(root, "bucket", "x.png"), "wb") as f:
    f.write(b"not an image")
if name == "ocr_upload":
    from fcocr.events import oss_event
    out = json.loads(index.handler(json.dumps({"events": [oss_event("bucket", "x.png", size=12)]}).encode(), context))
    assert out["records"][0]["status"] == "failed", out
    said = "ocr_upload wrote a failed result for a non-image"
elif name == "scan_callback":
    event = {"version": "v1", "rawPath": "/", "headers": {}, "body": "", "isBase64Encoded": False,
             "requestContext": {"http": {"method": "GET", "path": "/"}}}
    answer = index.handler_fc3(json.dumps(event).encode(), context)
    assert answer["statusCode"] == 405 and set(answer) == {"statusCode", "headers", "body", "isBase64Encoded"}
    said = "scan_callback answered an FC 3.0 HTTP GET with 405"
else:
    json.loads(index.handler(b"{}", context))
    said = "scan_reconcile ran a tick"
print(("context.credentials" if with_credentials else "credentials from the environment") + "; " + said)
"""


def verify_handler(zip_path: Path, python: str, function: str, runtime: Path | None, context_credentials: bool,
                   routes: str | None = None) -> str:
    """Call ``function``'s handler from the unpacked zip under ``python`` with FC's context emulated."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp)
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "FCOCR_LOG_LEVEL": "ERROR"}
        if routes:
            env["FCOCR_ROUTES"] = routes
        argv = [str(Path(tmp).resolve()), str(runtime.resolve()) if runtime else "", function,
                "1" if context_credentials else "0"]
        proc = subprocess.run([python, "-I", "-S", "-c", _HANDLER_CHECK, *argv],
                              capture_output=True, text=True, check=False, cwd=tmp, env=env)
        if proc.returncode != 0:
            raise PackageError(f"{zip_path.name}: the handler failed under {python}:\n{proc.stderr.strip()[-2000:]}")
        return proc.stdout.strip()


# What --verify imports from every built zip: the handler and the core; each family adds its own
# (``Family.packaging.verify``: its modules and the SDK modules they import lazily on FC).
CORE_MODULES = ["index", "fcocr.pipeline", "fcocr.reconcile", "fcocr.imaging", "fcocr.prepare",
                "oss2", "PIL.Image", "PIL.JpegImagePlugin", "PIL.PngImagePlugin", "PIL.TiffImagePlugin",
                "PIL.WebPImagePlugin", "PIL.GifImagePlugin", "PIL.BmpImagePlugin", "pypdfium2", "yaml"]


def modules_to_verify(providers: Iterable[str]) -> list[str]:
    from ..recognizers import family

    return CORE_MODULES + [m for name in sorted(providers) for m in family(name).packaging.verify]


def report(built: Built, budget_mb: float = BUDGET_MB, out=None) -> list[str]:
    """Print the zip sizes, the biggest parts and what was pruned; return the names of zips over budget."""
    out = out or sys.stdout
    over = []
    if built.split is not None:
        total = sum(built.left_out.values())
        print(f"left to FC's {FC_RUNTIME} runtime ({total / 1e6:.1f} MB uncompressed; FC_BUILTINS):", file=out)
        for name, why in built.split.left_out.items():
            size = built.left_out.get(name, 0)
            print(f"  {size / 1e6:7.2f} MB  {name}: {why}", file=out)
        known = {n: v for n, v in built.split.from_fc.items() if not v.startswith("version unknown")}
        unknown = sorted(set(built.split.from_fc) - set(known))
        if known:
            print("the zip's code imports FC's " + ", ".join(f"{name} {version}".strip() for name, version in
                                                            sorted(known.items())), file=out)
        if unknown:
            print("and FC's copies of " + ", ".join(unknown) + " (versions not documented: no requirement of "
                  "the zip's is left to them)", file=out)
        print(file=out)
    if built.removed:
        total = sum(built.removed.values())
        print(f"pruned {total / 1e6:.1f} MB (uncompressed):", file=out)
        for pattern, size in sorted(built.removed.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {size / 1e6:7.2f} MB  {pattern}", file=out)
    print(f"\n{'zip':<34}{'size':>10}   budget {budget_mb:g} MB", file=out)
    for name, path in built.zips.items():
        size = path.stat().st_size
        flag = "ok" if size <= budget_mb * 1e6 else "OVER BUDGET"
        if size > budget_mb * 1e6:
            over.append(name)
        print(f"{path!s:<34}{size / 1e6:>8.2f} MB   {flag}", file=out)
    first = next(iter(built.zips.values()))
    print("\nlargest parts (compressed, the same in every zip):", file=out)
    for head, size in contributors(first):
        print(f"  {size / 1e6:7.2f} MB  {head}", file=out)
    if built.plan.needs_engine:
        print("\nThe routes name local.*: the package carries the offline engine (rapidocr, onnxruntime, OpenCV)\n"
              "and is far larger than the budget. Deploy it as is (FC's code-size limit is far above it; the cost\n"
              "is a slower cold start), or move the engine into an FC layer; cloud-only routes need neither.",
              file=out)
    elif over:
        print(f"\nOver the {budget_mb:g} MB budget: {', '.join(over)}. The parts above are what the routes' "
              "recognizer families need after pruning.", file=out)
    return over


# ------------------------------------------------------------------------------------------ command line
def pyproject_requirements(repo: Path) -> list[Requirement]:
    """fcocr's requirements as pyproject.toml states them (what the wheel's METADATA will say)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pip, which runs the build, carries tomli
        from pip._vendor import tomli as tomllib  # type: ignore[no-redef]
    project = tomllib.loads((repo / "pyproject.toml").read_text("utf-8"))["project"]
    lines = list(project.get("dependencies", []))
    for extra, reqs in project.get("optional-dependencies", {}).items():
        lines += [f'{r}; extra == "{extra}"' for r in reqs if not r.startswith("fcocr[")]
    return parse_requires_dist(lines)


def oss_uris(zips: dict[str, Path], bucket: str, prefix: str) -> dict[str, str]:
    """Content-addressed object names: a new build is a new CodeUri, so a stack update redeploys the code."""
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    return {name: f"oss://{bucket}/{prefix}{name}-{sha256_file(path)[:12]}.zip" for name, path in zips.items()}


def run_cli(args, out=None) -> int:
    """``fcocr package`` (arguments parsed by fcocr.tools.cli)."""
    from ..config import Settings

    out = out or sys.stdout
    routes = args.routes or Settings.from_env().routes
    try:
        with use_runtime(getattr(args, "runtime", None) or FC_RUNTIME) as target:
            if args.plan:
                return _plan_cli(args, routes, out)
            return _build_cli(args, routes, target, out)
    except PackageError as exc:
        print(f"fcocr package: {exc}", file=sys.stderr)
        return 2


def _plan_cli(args, routes, out) -> int:
    the_plan = plan(routes, args.providers, requirements=pyproject_requirements(repository_root()))
    print("recognizer families:", ", ".join(sorted(the_plan.providers)) or "none", file=out)
    print("requirements:", " ".join(the_plan.requirements), file=out)
    provided = the_plan.fc_provided()
    if provided:
        print(f"left to FC's {FC_RUNTIME} runtime (with what only they need): " + ", ".join(
            f"{line} ({how})" for line, how in provided.items()), file=out)
    if the_plan.needs_engine:
        print("the routes name local.*: the offline engine goes in, far over the "
              f"{args.budget_mb:g} MB budget (a bigger package or an FC layer)", file=out)
    return 0


def _build_cli(args, routes, target, out) -> int:
    built = build(Path(args.out), routes=routes, extra_providers=args.providers,
                  log=lambda *a: print(*a, file=out, flush=True))
    over = report(built, args.budget_mb, out)
    if args.verify:
        modules = modules_to_verify(built.plan.providers)
        for name, path in built.zips.items():
            print(f"verify {name}: {verify_imports(path, args.verify, modules, built.runtime)}", file=out)
            handler = verify_handler(path, args.verify, name, built.runtime, target.context_credentials, routes)
            print(f"  {target.name} handler: {handler}", file=out)
    if args.code_bucket:
        uris = oss_uris(built.zips, args.code_bucket, args.code_prefix)
        write_packaged_templates(Path(args.out), uris, args.code_bucket, target.name, out)
        for name, uri in uris.items():
            print(f"  aliyun oss cp {built.zips[name]} {uri}", file=out)
    return 1 if over and args.strict else 0


def write_packaged_templates(out_dir: Path, uris: dict[str, str], bucket: str, runtime_name: str,
                             out=None) -> list[Path]:
    """The deploy files' templates pointed at this build's zips on OSS: OUT/template.yml (FC 3.0, Runtime
    defaulting to the one built for) and, for a python3.10 build, OUT/fc2/template.yml (FC 2.0's runtime)."""
    from . import deploy, deploy_files

    objects = {name: uri.split(f"oss://{bucket}/", 1)[1] for name, uri in uris.items()}
    fc3 = deploy_files.fc3_template(code_objects=objects, code_bucket=bucket)
    fc3["Parameters"]["Runtime"]["Default"] = runtime_name
    written = [out_dir / "template.yml"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written[0].write_text(deploy_files.dump(fc3), "utf-8")
    if runtime_name == deploy.FC2_RUNTIME:
        written.append(out_dir / "fc2" / "template.yml")
        written[1].parent.mkdir(parents=True, exist_ok=True)
        written[1].write_text(deploy_files.dump(deploy_files.fc2_template(code_uris=uris)), "utf-8")
    print(f"\nwrote {' and '.join(map(str, written))} (code on OSS); upload the zips first:", file=out or sys.stdout)
    return written
