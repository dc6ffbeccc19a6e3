"""FC's Python runtimes as ``fcocr package --runtime`` builds for them: interpreter, platform, built-in modules.

Each runtime puts its documented built-in modules on ``sys.path`` after the function's code; ``fcocr package``
leaves out of the zip what they provide (fcocr.package.split_for_fc) and emulates them for ``--verify``.
Tables: "Python runtimes" -> "Built-in modules" (https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/
user-guide/runtime-overview-2). python3.10 is fcocr.package's original table (FC_BUILTINS and its notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FcRuntime:
    name: str  # FC's runtime identifier
    python: str  # "3.12"
    full_version: str  # the interpreter FC runs, for environment markers
    glibc: int  # the minor of glibc 2.x on the runtime's Debian: manylinux wheels up to it run there
    builtins: dict = field(default_factory=dict)  # name -> documented version (None: no usable version)
    dependency_ranges: dict = field(default_factory=dict)  # see fcocr.package.FC_DEPENDENCY_RANGES
    implicit_imports: dict = field(default_factory=dict)  # see fcocr.package.FC_IMPLICIT_IMPORTS
    context_credentials: bool = True  # whether FC's context carries the role's STS credentials

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(f"manylinux_2_{minor}_x86_64" for minor in range(self.glibc, 16, -1)) + (
            "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")

    @property
    def marker_environment(self) -> dict[str, str]:
        return {"implementation_name": "cpython", "implementation_version": self.full_version, "os_name": "posix",
                "platform_machine": "x86_64", "platform_python_implementation": "CPython",
                "platform_system": "Linux", "python_full_version": self.full_version, "python_version": self.python,
                "sys_platform": "linux", "platform_release": "", "platform_version": "", "extra": ""}


def python310() -> FcRuntime:
    from . import package

    return FcRuntime("python3.10", "3.10", "3.10.13", 28, dict(package.PYTHON310_BUILTINS),
                     dict(package.PYTHON310_DEPENDENCY_RANGES), dict(package.PYTHON310_IMPLICIT_IMPORTS))


# python3.12 (Debian 11, glibc 2.31): oss2, Pillow and requests, and none of python3.10's other modules (no
# aliyun-fc2, no tablestore, no pyOpenSSL, so no constraint on the zip's cryptography). The STS credentials
# of the role are in ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/ALIBABA_CLOUD_SECURITY_TOKEN, not context.credentials.
PYTHON312 = FcRuntime("python3.12", "3.12", "3.12.1", 31,
                      {"oss2": "2.18.6", "Pillow": "10.4.0", "requests": "2.32.3"},
                      context_credentials=False)


def runtime(name: str) -> FcRuntime:
    if name == "python3.10":
        return python310()
    if name == "python3.12":
        return PYTHON312
    raise ValueError(f"unknown FC runtime {name!r} (python3.10, python3.12)")


NAMES = ("python3.10", "python3.12")
