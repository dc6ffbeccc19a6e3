"""fcocr package, without the network: what goes in, what is pruned, the zips, the report.

The pip steps themselves (a real build downloads ~30 wheels and takes about a minute) are not run
here; `make package` runs them, and `fcocr package --verify PYTHON3.10` imports every handler and
SDK from the built zips and decodes every accepted format with what pruning left.
"""

import io
import random
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import yaml

from fcocr.tools import cli, package
from fcocr.tools.package import PackageError, Requirement

from .conftest import REPO

TENCENT_ROUTES = '{"routes": [{"match": "**", "recognizer": "tencent.VatInvoiceOCR"}]}'


# ------------------------------------------------------------------------------------------ requirements
def test_every_requirement_of_the_packaged_extras_belongs_to_a_family():
    requirements = package.pyproject_requirements(REPO)
    extras = {r.extra for r in requirements}
    assert {"oss", "cloud", "local"} <= extras
    groups = package.requirement_groups()
    for req in requirements:
        if req.extra in package.PACKAGED_EXTRAS:
            assert req.name in groups, req.spec
    assert set(groups.values()) <= {"base", "cli", *package.family_names()}
    everything = package.select(requirements, package.family_names())  # raises on an unplaced requirement
    assert not any(s.startswith(("pytest", "hypothesis", "jsonschema", "gmssl", "aliyun-fc2")) for s in everything)


def test_every_family_declares_modules_to_verify_that_are_its_own():
    from fcocr.recognizers import family

    for name in package.family_names():
        verify = family(name).packaging.verify
        assert verify and verify[0].startswith(f"fcocr.recognizers.{name}"), name
    assert set(package.modules_to_verify(package.family_names())) >= set(package.CORE_MODULES)


def test_cloud_routes_get_their_vendor_sdk_and_never_the_engine():
    the_plan = package.plan(TENCENT_ROUTES, requirements=package.pyproject_requirements(REPO))
    names = {package.canonical(s.split(">")[0].split("=")[0]) for s in the_plan.requirements}
    assert the_plan.providers == {"tencent"} and not the_plan.needs_engine
    assert {"tencentcloud-sdk-python-common", "tencentcloud-sdk-python-ocr", "oss2", "pypdfium2", "pillow",
            "pyyaml"} <= names
    assert "tencentcloud-sdk-python" not in names  # the slim SDK only
    assert not names & {"rapidocr", "onnxruntime", "alibabacloud-tea-openapi", "aliyun-python-sdk-green"}


def test_local_routes_bring_the_engine_and_with_adds_a_family():
    the_plan = package.plan(None, ["green"], requirements=package.pyproject_requirements(REPO))  # shipped routes
    assert the_plan.providers == {"local", "green"} and the_plan.needs_engine
    names = " ".join(the_plan.requirements)
    assert "rapidocr" in names and "onnxruntime" in names and "aliyun-python-sdk-green" in names


def test_select_keeps_core_and_base_and_skips_dev_and_cli():
    reqs = package.parse_requires_dist([
        "PyYAML>=6.0", 'oss2>=2.18; extra == "oss"', 'pytest>=8; extra == "dev"',
        'tencentcloud-sdk-python-ocr>=3.1; extra == "cloud"', 'aliyun-fc2>=2.5; extra == "cloud"',
        'rapidocr==3.10.0; extra == "local"'])
    assert package.select(reqs, []) == ["oss2>=2.18", "PyYAML>=6.0"]
    assert package.select(reqs, ["tencent", "local"]) == ["oss2>=2.18", "PyYAML>=6.0", "rapidocr==3.10.0",
                                                          "tencentcloud-sdk-python-ocr>=3.1"]
    with pytest.raises(PackageError, match="REQUIREMENT_GROUPS"):
        package.select(package.parse_requires_dist(['mystery>=1; extra == "cloud"']), [])
    with pytest.raises(PackageError, match="unknown recognizer families"):
        package.select(reqs, ["azure"])


def test_requires_dist_lines_are_read_strictly():
    (req,) = package.parse_requires_dist(['Foo_Bar[x] >=1.2 ; extra == "cloud"'])
    assert req == Requirement("foo-bar", "Foo_Bar[x]>=1.2", "cloud")
    with pytest.raises(PackageError, match="marker"):
        package.parse_requires_dist(['foo; python_version < "3.11"'])


def write_dist(site: Path, name: str, version: str, requires: list[str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    body = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    body += "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(body, "utf-8")


def test_dependencies_that_only_fc_python_needs_are_found(tmp_path):
    # pip evaluates markers for the Python running it: on 3.11 it leaves out what 3.10 needs.
    write_dist(tmp_path, "aiohttp", "3.14.5", ['async-timeout<6,>=4.0; python_version < "3.11"',
                                               'tomli; python_version >= "3.11"', "yarl>=1.17",
                                               'brotli; extra == "speedups"'])
    write_dist(tmp_path, "yarl", "1.25.1", [])
    assert package.missing_for_target(tmp_path) == ["async-timeout<6,>=4.0"]
    write_dist(tmp_path, "async_timeout", "5.0.1", [])
    assert package.missing_for_target(tmp_path) == []


# ------------------------------------------------------------------------------------------ FC's runtime
def test_fc_builtins_are_the_documented_python310_modules():
    builtins = package.fc_builtin_versions()
    assert len(builtins) == 21
    assert builtins["oss2"] == "2.16.0" and builtins["pillow"] == "9.3.0" and builtins["requests"] == "2.28.1"
    assert builtins["aliyun-python-sdk-kms"] == "2.16.0" and builtins["scrapy"] == "2.7.1"
    assert builtins["pyopenssl"] is None  # documented as "1.0.2", which no pyOpenSSL release is
    pins = package.fc_runtime_requirements()
    assert "oss2==2.16.0" in pins and "Pillow==9.3.0" in pins and "pyOpenSSL" in pins
    assert "cryptography>=3.3,<51" in pins  # the emulated runtime stays inside the assumed range


def test_fcocr_asks_no_newer_oss2_and_requests_than_fc_ships():
    # The package leaves them to FC only while these hold (pyproject.toml says why each bound is what it is).
    the_plan = package.plan(TENCENT_ROUTES, requirements=package.pyproject_requirements(REPO))
    provided = the_plan.fc_provided()
    assert provided == {"oss2>=2.16": "FC has 2.16.0"}
    # Pillow is not left to FC: its 9.3.0 fails on the frames of a multi-page TIFF (fixed in 10.1).
    assert "Pillow>=10.1" in the_plan.requirements
    market = package.plan(TENCENT_ROUTES, ["market"], requirements=package.pyproject_requirements(REPO))
    assert any(line.startswith("requests") for line in market.fc_provided())


def spec(text):
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(text)


@pytest.mark.parametrize("text, expected", [
    ("", True), (">=3.0.0", True), (">=3.3", True), (">3.2", True), ("<51.0.0,>=3.0.0", True), ("<52", True),
    (">=3.4", False), (">3.3", False), ("<50", False), ("<=50.0.2", False), ("<=51", True),
    ("!=2.0", True), ("!=40.0.0", False), ("!=40.*", False), ("==38.0.4", False), ("~=38.0", False),
])
def test_a_range_satisfies_a_specifier_only_if_every_version_in_it_does(text, expected):
    assert package.range_satisfies("3.3", "51", spec(text)) is expected


def test_fc_provides_documented_versions_ranges_and_nothing_else():
    assert package.fc_provides("oss2", spec(">=2.16")) == "2.16.0 (documented)"
    assert package.fc_provides("oss2", spec(">=2.18")) is None
    assert package.fc_provides("pillow", spec(">=10.1")) is None
    assert package.fc_provides("cryptography", spec("<51.0.0,>=3.0.0")) == ">=3.3,<51"
    assert package.fc_provides("cryptography", spec(">=42")) is None
    assert package.fc_provides("pyopenssl", spec("")) is None  # installed, but of no known version
    assert package.fc_provides("urllib3", spec("")) is None  # a dependency of FC's requests, version unknown


def test_read_distributions_applies_fc_markers_and_drops_extras(tmp_path):
    write_dist(tmp_path, "aliyun_python_sdk_green", "3.6.6", ["aliyun-python-sdk-core (>=2.11.5)"])
    write_dist(tmp_path, "aiohttp", "3.14.5", ['async-timeout<6,>=4.0; python_version < "3.11"',
                                               'tomli; python_version >= "3.11"', 'brotli; extra == "speedups"'])
    dists = package.read_distributions(tmp_path)
    assert [str(r) for r in dists["aliyun-python-sdk-green"].requires] == ["aliyun-python-sdk-core>=2.11.5"]
    assert [r.name for r in dists["aiohttp"].requires] == ["async-timeout"]
    assert dists["aiohttp"].version == "3.14.5" and dists["aiohttp"].info.name == "aiohttp-3.14.5.dist-info"


# A pip-installed site (what fcocr's requirements resolve to today) and FC's runtime, as metadata only.
SITE = {
    "fcocr": ("0.1.0", ["PyYAML>=6.0", "Pillow>=9.3", 'pytest>=8; extra == "dev"']),
    "PyYAML": ("6.0.3", []), "pypdfium2": ("5.15.2", []), "pillow": ("13.0.0", []),
    "oss2": ("2.19.1", ["requests!=2.9.0", "crcmod>=1.7", "pycryptodome>=3.4.7", "aliyun-python-sdk-kms>=2.4.1",
                        "aliyun-python-sdk-core>=2.13.12", "six"]),
    "aliyun_python_sdk_kms": ("2.16.5", ["aliyun-python-sdk-core >=2.11.5"]),
    "aliyun_python_sdk_core": ("2.16.1", ["cryptography (>=3.0.0)", "jmespath (<2.0.0,>=0.9.3)"]),
    "aliyun_python_sdk_green": ("3.6.6", ["aliyun-python-sdk-core (>=2.11.5)"]),
    "cryptography": ("50.0.2", ["cffi>=2.0.0", 'typing-extensions>=4.13.2; python_full_version < "3.11"']),
    "cffi": ("2.1.1", ["pycparser"]), "pycparser": ("3.12", []), "typing_extensions": ("4.16.0", []),
    "requests": ("2.34.2", ["charset_normalizer<4,>=2", "idna<4,>=2.5", "urllib3<3,>=1.26", "certifi>=2023.5.7"]),
    "urllib3": ("2.8.0", []), "idna": ("3.20", []), "certifi": ("2026.10.18", []), "charset_normalizer": ("3.5.2", []),
    "crcmod": ("1.7", []), "pycryptodome": ("4.4.0", []), "six": ("1.17.0", []), "jmespath": ("1.1.0", []),
    "tencentcloud_sdk_python_common": ("3.1.195", ["requests >=2.16.0"]),
    "yarl": ("1.25.1", ["idna>=2.0"]),
}
RUNTIME = {
    "oss2": ("2.16.0", ["requests!=2.9.0", "crcmod>=1.7", "pycryptodome>=3.4.7", "aliyun-python-sdk-kms>=2.4.1",
                        "aliyun-python-sdk-core>=2.13.12", "six"]),
    "aliyun_python_sdk_kms": ("2.16.0", ["aliyun-python-sdk-core>=2.11.5"]),
    "aliyun_python_sdk_core": ("2.16.1", ["cryptography>=3.0.0", "jmespath<2.0.0,>=0.9.3"]),
    "requests": ("2.28.1", ["charset-normalizer<3,>=2", "idna<4,>=2.5", "urllib3<1.27,>=1.21.1", "certifi>=2017.4.17"]),
    "pyopenssl": ("26.4.0", ["cryptography<51,>=49.0.0", 'typing-extensions>=4.9; python_version < "3.13"']),
    "cryptography": ("50.0.2", ["cffi>=2.0.0"]), "cffi": ("2.1.1", ["pycparser"]), "pycparser": ("3.12", []),
    "typing_extensions": ("4.16.0", []), "pillow": ("9.3.0", []), "urllib3": ("1.26.20", []), "idna": ("3.20", []),
    "certifi": ("2026.10.18", []), "charset_normalizer": ("2.1.1", []), "crcmod": ("1.7", []),
    "pycryptodome": ("4.4.0", []), "six": ("1.17.0", []), "jmespath": ("1.1.0", []),
    "scrapy": ("2.7.1", ["cryptography>=3.3", "pyOpenSSL>=21.0.0"]),
}
BASE = ["oss2>=2.16", "Pillow>=9.3", "pypdfium2>=4.30", "PyYAML>=6.0"]


def fake_sites(tmp_path, site=None, runtime=None):
    for root, table in ((tmp_path / "site", site or SITE), (tmp_path / "runtime", runtime or RUNTIME)):
        for name, (version, requires) in table.items():
            write_dist(root, name, version, requires)
    return package.read_distributions(tmp_path / "site"), package.read_distributions(tmp_path / "runtime")


def test_what_fc_ships_stays_out_with_what_only_it_needs(tmp_path):
    site, runtime = fake_sites(tmp_path)
    split = package.split_for_fc("fcocr", [*BASE, "tencentcloud-sdk-python-common>=3.1.190"], site, runtime)
    assert set(split.kept) == {"fcocr", "pyyaml", "pypdfium2", "tencentcloud-sdk-python-common"}
    assert split.left_out["oss2"].startswith("FC python3.10 has 2.16.0, which meets fcocr: oss2>=2.16")
    assert "Pillow>=9.3" in split.left_out["pillow"]
    assert "tencentcloud-sdk-python-common: requests>=2.16.0" in split.left_out["requests"]
    assert split.left_out["cryptography"].startswith("needed only by aliyun-python-sdk-core")
    assert split.left_out["urllib3"].startswith("needed only by requests")
    assert split.left_out["yarl"] == "needed by nothing in the zip"
    # What the zip's code imports from FC, through FC's own metadata and aliyunsdkcore's pyOpenSSL import.
    assert split.from_fc["oss2"] == "2.16.0" and split.from_fc["requests"] == "2.28.1"
    assert split.from_fc["cryptography"] == ">=3.3,<51 (emulated: 50.0.2)"
    assert split.from_fc["pyopenssl"] == "version unknown (emulated: 26.4.0)"


def test_a_requirement_fc_does_not_meet_keeps_the_zips_copy(tmp_path):
    site, runtime = fake_sites(tmp_path)
    split = package.split_for_fc("fcocr", [*BASE, "requests>=2.31"], site, runtime)
    # FC's 2.28.1 is too old: requests and its dependencies (no documented version) go in; FC's oss2 uses them.
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= set(split.kept)
    assert "oss2" in split.left_out and "requests" not in split.from_fc


def test_green_keeps_its_sdk_core_and_leaves_cryptography_to_fc(tmp_path):
    site, runtime = fake_sites(tmp_path)
    split = package.split_for_fc("fcocr", [*BASE, "aliyun-python-sdk-core>=2.16", "aliyun-python-sdk-green>=3.6.6"],
                                 site, runtime)
    # FC's aliyun-python-sdk-core has no documented version: fcocr's >=2.16 needs the zip's, and its jmespath.
    assert {"aliyun-python-sdk-core", "aliyun-python-sdk-green", "jmespath"} <= set(split.kept)
    assert "aliyun-python-sdk-core: cryptography>=3.0.0" in split.left_out["cryptography"]
    assert {"cffi", "pycparser", "typing-extensions"} <= set(split.left_out)
    assert "pyopenssl" in split.from_fc  # the zip's aliyunsdkcore imports FC's pyOpenSSL


def test_a_cryptography_fc_cannot_have_is_refused_not_shipped_under_fcs_pyopenssl(tmp_path):
    site = dict(SITE, needs_new_crypto=("1.0", ["cryptography>=49"]))
    site, runtime = fake_sites(tmp_path, site)
    with pytest.raises(PackageError, match="FC's pyopenssl .*requires cryptography<51,>=49.0.0, the zip has crypto"):
        package.split_for_fc("fcocr", [*BASE, "needs-new-crypto"], site, runtime)


def test_the_zip_shadowing_what_fcs_module_needs_brings_that_module_too(tmp_path):
    site = dict(SITE, idna=("4.1", []), yarl=("1.25.1", ["idna>=4"]),
                requests=("2.34.2", ["idna>=2.5", "urllib3<3,>=1.26"]))
    site, runtime = fake_sites(tmp_path, site)
    split = package.split_for_fc("fcocr", [*BASE, "yarl"], site, runtime)
    # The zip's idna 4.1 would be FC's requests 2.28.1's (idna<4): the zip carries requests as well.
    assert {"yarl", "idna", "requests", "urllib3"} <= set(split.kept)
    assert "requests" not in split.left_out and "oss2" in split.left_out


def test_an_upper_bound_of_a_copy_of_unknown_version_counts_as_broken(tmp_path):
    site = dict(SITE, uses_jmespath=("1.0", ["jmespath>=1.0"]))
    site, runtime = fake_sites(tmp_path, site)
    split = package.split_for_fc("fcocr", [*BASE, "uses-jmespath"], site, runtime)
    # FC's aliyun-python-sdk-core (version unknown) caps jmespath: the emulated cap says nothing of FC's.
    assert {"jmespath", "aliyun-python-sdk-core"} <= set(split.kept)


def test_the_vendored_requests_of_aliyunsdkcore_imports_pyopenssl():
    # The reason for FC_IMPLICIT_IMPORTS (and for never shipping cryptography under FC's pyOpenSSL).
    import importlib.util

    origin = Path(importlib.util.find_spec("aliyunsdkcore").origin).parent
    text = (origin / "vendored" / "requests" / "__init__.py").read_text("utf-8")
    assert "from .packages.urllib3.contrib import pyopenssl" in text and "except ImportError:" in text
    assert package.FC_IMPLICIT_IMPORTS["aliyun-python-sdk-core"] == ("pyopenssl",)


def write_record(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    write_dist(site, name, version, [])
    make_tree(site, files)
    info = f"{name}-{version}.dist-info"
    lines = [f"{path},," for path in files] + [f"{info}/METADATA,,", f"{info}/RECORD,,", "../../../bin/x,,"]
    (site / info / "RECORD").write_text("\n".join(lines) + "\n", "utf-8")


def test_distributions_left_out_are_removed_by_their_record(tmp_path):
    site = tmp_path / "site"
    write_record(site, "oss2", "2.19.1", {"oss2/__init__.py": b"x" * 100, "oss2/api.py": b"x"})
    write_record(site, "tencentcloud_sdk_python_common", "3.1.195", {"tencentcloud/__init__.py": b"",
                                                                       "tencentcloud/common/client.py": b"x"})
    write_record(site, "tencentcloud_sdk_python_ocr", "3.1.193", {"tencentcloud/__init__.py": b"",
                                                                    "tencentcloud/ocr/models.py": b"x" * 10})
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x").write_bytes(b"outside")
    dists = package.read_distributions(site)
    removed = package.remove_distributions(site, ["oss2", "tencentcloud-sdk-python-ocr"], dists)
    left = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert left == ["tencentcloud/__init__.py", "tencentcloud/common/client.py",  # the shared file stays
                    "tencentcloud_sdk_python_common-3.1.195.dist-info/METADATA",
                    "tencentcloud_sdk_python_common-3.1.195.dist-info/RECORD"]
    assert not (site / "oss2").exists() and not (site / "tencentcloud" / "ocr").exists()
    assert removed["oss2"] > 101 and (tmp_path / "bin" / "x").exists()  # nothing outside the site


def test_verify_imports_puts_the_runtime_after_the_zip(tmp_path):
    import sys
    import sysconfig

    runtime = Path(sysconfig.get_paths()["purelib"])  # this interpreter's site-packages stands in for FC's
    site = tmp_path / "zip"
    make_tree(site, {"probe.py": b"import oss2, PIL.Image, yaml\n"})
    shutil.copytree(Path(yaml.__file__).parent, site / "yaml")  # in both: the zip's must win
    handler = tmp_path / "index.py"
    handler.write_text("import probe\n", "utf-8")
    zip_path = package.write_zip(tmp_path / "f.zip", site, handler)
    text = package.verify_imports(zip_path, sys.executable, ["index", "probe"], runtime)
    assert "every format decodes" in text
    fc, ours = text.splitlines()[1:3]
    assert "oss2" in fc and "PIL" in fc and "yaml" not in fc
    assert ours.startswith("  from the zip: yaml")
    with pytest.raises(PackageError, match="emulated FC runtime"):
        package.verify_imports(zip_path, sys.executable, ["index", "not_a_module"], runtime)


# ------------------------------------------------------------------------------------------ pruning
def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


KEPT = {
    "fcocr/__init__.py": b"", "fcocr/routes.yml": b"routes: []\n", "fcocr/schema/result.schema.json": b"{}",
    "oss2/__init__.py": b"", "oss2-2.19.1.dist-info/METADATA": b"Name: oss2\n",
    "oss2-2.19.1.dist-info/licenses/LICENSE": b"MIT", "PIL/_imaging.cpython-310-x86_64-linux-gnu.so": b"x" * 10,
    "PIL/_webp.cpython-310-x86_64-linux-gnu.so": b"x", "yaml/__init__.py": b"", "aiohttp/http_parser.py": b"",
    "Crypto/Cipher/_raw_aes.abi3.so": b"x", "Crypto/Hash/_SHA256.abi3.so": b"x", "Crypto/Math/_nat.abi3.so": b"x",
    "tencentcloud/ocr/v20181119/models.py": b"", "crcmod/_crcfunpy.py": b"",
}
PRUNED = {
    "fcocr/__pycache__/pipeline.cpython-311.pyc": b"x" * 100, "__pycache__/typing_extensions.cpython-311.pyc": b"x",
    "bin/fcocr": b"#!", "oss2-2.19.1.dist-info/RECORD": b"x" * 7, "oss2-2.19.1.dist-info/INSTALLER": b"pip",
    "fcocr/samples/receipt.jpg": b"x" * 1000, "websocket/tests/test_app.py": b"x", "aiohttp/test_utils.py": b"x",
    "crcmod/test.py": b"x", "Crypto/SelfTest/__init__.py": b"x", "Crypto/PublicKey/_ec_nat.abi3.so": b"x" * 50,
    "Crypto/PublicKey/_mlkem.abi3.so": b"x", "Crypto/Cipher/_raw_des3.abi3.so": b"x",
    "PIL/_avif.cpython-310-x86_64-linux-gnu.so": b"x" * 20, "PIL/_imagingft.cpython-310-x86_64-linux-gnu.so": b"x",
    "yaml/_yaml.cpython-310-x86_64-linux-gnu.so": b"x", "_yaml/__init__.py": b"",
    "aiohttp/_http_parser.cpython-310-x86_64-linux-gnu.so": b"x", "aiohttp/_http_parser.pyx": b"x",
    "multidict/_multidict.cpython-310-x86_64-linux-gnu.so": b"x", "PIL/_imaging.pyi": b"x",
}


def test_prune_removes_what_the_rules_say_and_keeps_the_rest(tmp_path):
    make_tree(tmp_path, {**KEPT, **PRUNED})
    removed = package.prune(tmp_path)
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert left == set(KEPT)
    assert removed["fcocr/samples"] == 1000 and removed["PIL/_avif.*.so"] == 20
    assert removed["Crypto/PublicKey/_ec_*.so"] == 50 and removed["*.dist-info/RECORD"] == 7
    assert sum(removed.values()) == sum(len(v) for v in PRUNED.values())


def test_every_rule_says_why():
    assert all(rule.reason and rule.pattern for rule in package.PRUNE)
    assert len({rule.pattern for rule in package.PRUNE}) == len(package.PRUNE)


def elf(needed: list[str]) -> bytes:
    """A minimal 64-bit little-endian ELF shared object: .dynstr and .dynamic with DT_NEEDED entries."""
    strtab = b"\0"
    offsets = []
    for name in needed:
        offsets.append(len(strtab))
        strtab += name.encode() + b"\0"
    dynamic = b"".join(struct.pack("<qQ", 1, off) for off in offsets) + struct.pack("<qQ", 0, 0)
    str_off = 64
    dyn_off = str_off + len(strtab)
    sh_off = dyn_off + len(dynamic)
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 0)
    null = b"\0" * 64
    dynstr = struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    dyn = struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, dyn_off, len(dynamic), 1, 0, 8, 16)
    return header + strtab + dynamic + null + dynstr + dyn


def test_elf_needed_reads_dt_needed(tmp_path):
    (tmp_path / "a.so").write_bytes(elf(["libfoo-1a2b.so.1", "libc.so.6"]))
    (tmp_path / "b.txt").write_bytes(b"not an elf file at all, just some text" * 4)
    assert package.elf_needed(tmp_path / "a.so") == ["libfoo-1a2b.so.1", "libc.so.6"]
    assert package.elf_needed(tmp_path / "b.txt") is None


def test_elf_needed_reads_a_real_extension_module():
    import PIL._imaging as imaging

    needed = package.elf_needed(Path(imaging.__file__))
    assert needed and "libc.so.6" in needed
    libs = Path(imaging.__file__).parent.parent / "pillow.libs"
    if libs.is_dir():  # a manylinux wheel: its vendored libraries are linked by these names
        vendored = {p.name for p in libs.iterdir()}
        assert any(n in vendored for n in needed)


def test_vendored_libraries_nothing_links_to_are_orphans(tmp_path):
    make_tree(tmp_path, {
        "PIL/_imaging.cpython-310-x86_64-linux-gnu.so": elf(["libtiff-1.so.6", "libc.so.6"]),
        "PIL/_webp.cpython-310-x86_64-linux-gnu.so": elf(["libwebp-2.so.7"]),
        "pillow.libs/libtiff-1.so.6": elf(["libzstd-3.so.1"]),  # needed through libtiff
        "pillow.libs/libzstd-3.so.1": elf([]),
        "pillow.libs/libwebp-2.so.7": elf([]),
        "pillow.libs/libavif-4.so.16": elf(["libzstd-3.so.1"]),  # its module was pruned
        "pillow.libs/libfreetype-5.so.6": elf(["libpng16-6.so.16"]),
        "pillow.libs/libpng16-6.so.16": elf([]),
    })
    orphans = [p.name for p in package.orphaned_libraries(tmp_path)]
    assert orphans == ["libavif-4.so.16", "libfreetype-5.so.6", "libpng16-6.so.16"]
    removed = package.prune_tree(tmp_path)
    assert removed["pillow.libs/ (no module links to it)"] > 0
    assert sorted(p.name for p in (tmp_path / "pillow.libs").iterdir()) == ["libtiff-1.so.6", "libwebp-2.so.7",
                                                                             "libzstd-3.so.1"]


# ------------------------------------------------------------------------------------------ zips
def test_zip_has_the_handler_at_its_root_and_is_reproducible(tmp_path):
    site = tmp_path / "site"
    noise = random.Random(0).randbytes(4000)  # incompressible: the biggest part stays the biggest
    make_tree(site, {"fcocr/__init__.py": b"# fcocr\n", "PIL/_imaging.abi3.so": b"\x7fELF...",
                     "oss2/__init__.py": noise})
    handler = REPO / "functions" / "ocr_upload" / "index.py"
    first = package.write_zip(tmp_path / "a" / "ocr_upload.zip", site, handler)
    second = package.write_zip(tmp_path / "b" / "ocr_upload.zip", site, handler)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as z:
        names = z.namelist()
        assert names == sorted(names) and "index.py" in names
        assert z.read("index.py") == handler.read_bytes()
        assert z.getinfo("PIL/_imaging.abi3.so").external_attr >> 16 & 0o777 == 0o755
        assert z.getinfo("fcocr/__init__.py").external_attr >> 16 & 0o777 == 0o644
    parts = dict(package.contributors(first))
    assert set(parts) == {"fcocr", "PIL", "oss2", "index.py"}
    assert parts["oss2"] == max(parts.values())


@pytest.mark.parametrize("name", sorted(package.FUNCTIONS))
def test_every_function_handler_exists(name):
    assert (REPO / package.FUNCTIONS[name] / "index.py").is_file()


@pytest.mark.parametrize("runtime", ["python3.12", "python3.10"])
def test_the_packaged_templates_point_every_function_at_oss(tmp_path, runtime):
    zips = {}
    for i, name in enumerate(package.FUNCTIONS):
        zips[name] = tmp_path / f"{name}.zip"
        zips[name].write_bytes(bytes([i]) * 10)
    uris = package.oss_uris(zips, "code-bucket", "/fcocr-code/")
    assert uris["ocr_upload"].startswith("oss://code-bucket/fcocr-code/ocr_upload-")
    assert len(set(uris.values())) == 3  # content-addressed: a new build is new code
    written = package.write_packaged_templates(tmp_path / "out", uris, "code-bucket", runtime, io.StringIO())
    fc3 = yaml.safe_load((tmp_path / "out" / "template.yml").read_text("utf-8"))
    assert fc3["Parameters"]["CodeBucket"]["Default"] == "code-bucket"
    assert fc3["Parameters"]["Runtime"]["Default"] == runtime
    functions = {r["Properties"]["FunctionName"]: r["Properties"] for r in fc3["Resources"].values()
                 if r["Type"] == "ALIYUN::FC3::Function"}
    for name in package.FUNCTIONS:
        assert functions[f"fcocr-{name}"]["Code"]["OssObjectName"] == uris[name].split("code-bucket/")[1]
    if runtime == "python3.10":  # FC 2.0 runs python3.10 only
        service = yaml.safe_load(written[1].read_text("utf-8"))["Resources"]["fcocr"]
        assert {name: service[name]["Properties"]["CodeUri"] for name in package.FUNCTIONS} == uris
    else:
        assert written == [tmp_path / "out" / "template.yml"]


def test_python312_leaves_its_own_modules_to_fc_and_the_tables_come_back():
    with package.use_runtime("python3.12") as target:
        assert package.FC_PYTHON == "3.12" and "manylinux_2_31_x86_64" in package.FC_PLATFORMS
        assert package.fc_builtin_versions() == {"oss2": "2.18.6", "pillow": "10.4.0", "requests": "2.32.3"}
        assert "aliyun-fc2" not in package.fc_runtime_requirements() and not package.FC_DEPENDENCY_RANGES
        the_plan = package.plan(TENCENT_ROUTES, ["market"], requirements=package.pyproject_requirements(REPO))
        provided = the_plan.fc_provided()
        assert provided["Pillow>=10.1"] == "FC has 10.4.0" and provided["oss2>=2.16"] == "FC has 2.18.6"
        assert any(line.startswith("requests") for line in provided)
        assert package.FC_MARKER_ENVIRONMENT["python_version"] == "3.12" and not target.context_credentials
    assert package.FC_PYTHON == "3.10" and package.fc_builtin_versions()["aliyun-fc2"] == "2.5.2"
    assert package.FC_MARKER_ENVIRONMENT["python_version"] == "3.10" and "cryptography" in package.FC_DEPENDENCY_RANGES
    with package.use_runtime("python3.10") as target:
        assert target.context_credentials and package.fc_builtin_versions()["oss2"] == "2.16.0"


def test_verify_handler_calls_each_handler_with_fcs_context(tmp_path):
    import sys
    import sysconfig

    runtime = Path(sysconfig.get_paths()["purelib"])  # this interpreter's site-packages stands in for FC's
    site = tmp_path / "site"
    shutil.copytree(REPO / "shared" / "fcocr", site / "fcocr", ignore=shutil.ignore_patterns("samples", "__pycache__"))
    routes = '{"routes": [{"match": "**", "recognizer": "market.general"}]}'
    for name, with_credentials, said in (("ocr_upload", False, "wrote a failed result"),
                                         ("scan_callback", True, "405"), ("scan_reconcile", False, "a tick")):
        zip_path = package.write_zip(tmp_path / f"{name}.zip", site, REPO / package.FUNCTIONS[name] / "index.py")
        text = package.verify_handler(zip_path, sys.executable, name, runtime, with_credentials, routes)
        assert said in text and ("context.credentials" if with_credentials else "from the environment") in text
    broken = package.write_zip(tmp_path / "broken.zip", site, REPO / package.FUNCTIONS["scan_callback"] / "index.py")
    with pytest.raises(PackageError, match="the handler failed"):
        package.verify_handler(broken, sys.executable, "ocr_upload", runtime, True, routes)  # no index.handler


def test_report_flags_zips_over_budget_and_says_what_to_do_about_the_engine(tmp_path):
    small, big = tmp_path / "a.zip", tmp_path / "b.zip"
    for path, size in ((small, 10), (big, 5000)):
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("pkg/data.bin", b"\0" * size)
    built = package.Built(package.Plan({"tencent"}, []), {"a": small, "b": big}, {"fcocr/samples": 2_000_000})
    out = io.StringIO()
    assert package.report(built, budget_mb=0.001, out=out) == ["b"]
    text = out.getvalue()
    assert "OVER BUDGET" in text and "fcocr/samples" in text and "layer" not in text
    out = io.StringIO()
    engine = package.Built(package.Plan({"local"}, []), {"a": small}, {})
    assert package.report(engine, budget_mb=10, out=out) == []
    assert "offline engine" in out.getvalue() and "layer" in out.getvalue()


# ------------------------------------------------------------------------------------------ command line
def test_fcocr_package_plan_prints_families_and_requirements(capsys):
    assert cli.main(["package", "--plan", "--routes", TENCENT_ROUTES, "--with", "market"]) == 0
    out = capsys.readouterr().out
    assert "recognizer families: market, tencent" in out
    assert "tencentcloud-sdk-python-ocr" in out and "rapidocr" not in out


def test_fcocr_package_plan_for_the_shipped_routes_warns_about_the_engine(capsys):
    assert cli.main(["package", "--plan"]) == 0
    assert "offline engine goes in" in capsys.readouterr().out


def test_fcocr_package_rejects_an_unknown_family_and_bad_routes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["package", "--plan", "--with", "azure"])
    assert cli.main(["package", "--plan", "--routes", '{"routes": [{"match": "**", "recognizer": "x.y"}]}']) == 2


def test_make_package_runs_fcocr_package():
    makefile = (REPO / "Makefile").read_text("utf-8")
    assert "\npackage:" in makefile
    recipe = makefile.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert "fcocr package" in recipe
