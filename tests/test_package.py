"""fcocr package, without the network: what goes in, what is pruned, the zips, the report.

The pip steps themselves (a real build downloads ~30 wheels and takes about a minute) are not run
here; `make package` runs them, and `fcocr package --verify PYTHON3.10` imports every handler and
SDK from the built zips and decodes every accepted format with what pruning left.
"""

import io
import random
import struct
import zipfile
from pathlib import Path

import pytest
import yaml
from fcocr import cli, package
from fcocr.package import PackageError, Requirement

from .conftest import REPO

TENCENT_ROUTES = '{"routes": [{"match": "**", "recognizer": "tencent.VatInvoiceOCR"}]}'


# ------------------------------------------------------------------------------------------ requirements
def test_every_requirement_of_the_packaged_extras_belongs_to_a_family():
    requirements = package.pyproject_requirements(REPO)
    extras = {r.extra for r in requirements}
    assert {"oss", "cloud", "local"} <= extras
    for req in requirements:
        if req.extra in package.PACKAGED_EXTRAS:
            assert req.name in package.REQUIREMENT_GROUPS, req.spec
    assert set(package.REQUIREMENT_GROUPS.values()) <= {"base", "cli", *package.PROVIDERS}
    everything = package.select(requirements, package.PROVIDERS)  # raises on an unplaced requirement
    assert not any(s.startswith(("pytest", "hypothesis", "jsonschema", "gmssl", "aliyun-fc2")) for s in everything)


def test_the_families_are_the_recognizer_providers():
    from fcocr.recognizers import PROVIDER_MODULES

    assert set(package.PROVIDERS) == set(PROVIDER_MODULES)
    assert set(package.FAMILY_MODULES) == {"base", *package.PROVIDERS}


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


def test_the_packaged_template_points_every_function_at_oss(tmp_path):
    zips = {}
    for i, name in enumerate(package.FUNCTIONS):
        zips[name] = tmp_path / f"{name}.zip"
        zips[name].write_bytes(bytes([i]) * 10)
    uris = package.oss_uris(zips, "code-bucket", "/fcocr-code/")
    assert uris["ocr_upload"].startswith("oss://code-bucket/fcocr-code/ocr_upload-")
    assert len(set(uris.values())) == 3  # content-addressed: a new build is a new CodeUri
    text = package.packaged_template((REPO / "template.yml").read_text("utf-8"), uris)
    service = yaml.safe_load(text)["Resources"]["fcocr"]
    for name in package.FUNCTIONS:
        assert service[name]["Properties"]["CodeUri"] == uris[name]
    with pytest.raises(PackageError):
        package.packaged_template("Resources: {}\n", uris)


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
