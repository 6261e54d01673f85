"""The build backend (PEP 517) of sqlite-klevdb: builds a wheel holding the
package and the module, built from this repository's sources by
../build-module.sh, or the one named by `--config-settings module=PATH`
(a module built already, as the tests do). Only the standard library:
a build needs nothing from a package index. No sdist: the module's
sources are the repository around this folder.
"""
import base64
import hashlib
import os
import re
import subprocess
import sysconfig
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _project():
    """name, version, description, requires-python of pyproject.toml's
    [project] table (plain `key = "value"` lines: no TOML parser before
    Python 3.11)."""
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"\s*$', table, re.M))


def _tag():
    # The module is C with no tie to a Python version: py3-none-<platform>.
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-" + plat


def _module(config_settings, workdir):
    given = (config_settings or {}).get("module")
    if given:
        if not os.path.isfile(given):
            raise RuntimeError("klevdb: module=%s is not a file" % given)
        return given
    script = os.path.join(HERE, os.pardir, "build-module.sh")
    if not os.path.isfile(script):
        raise RuntimeError("klevdb: %s is missing: build from the klevdb repository" % script)
    subprocess.run(["sh", script, workdir], check=True)
    return os.path.join(workdir, "klevdb.so")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    name, version = p["name"], p["version"]
    dist = name.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, version)
    tag = _tag()
    files = []
    with tempfile.TemporaryDirectory() as work:
        module = _module(config_settings, work)
        pkg = os.path.join(HERE, "sqlite_klevdb")
        for fn in sorted(os.listdir(pkg)):
            if fn.endswith(".py"):
                with open(os.path.join(pkg, fn), "rb") as f:
                    files.append(("sqlite_klevdb/" + fn, f.read()))
        with open(module, "rb") as f:
            files.append(("sqlite_klevdb/klevdb.so", f.read()))
    metadata = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n"
                "Requires-Python: %s\nLicense: %s\n" %
                (name, version, p.get("description", ""), p.get("requires-python", ">=3"),
                 p.get("license", "")))
    wheel = ("Wheel-Version: 1.0\nGenerator: klevdb_build\nRoot-Is-Purelib: false\n"
             "Tag: %s\n" % tag)
    files.append((info + "/METADATA", metadata.encode()))
    files.append((info + "/WHEEL", wheel.encode()))
    record = [_record_line(a, d) for a, d in files] + [info + "/RECORD,,"]
    files.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    filename = "%s-%s-%s.whl" % (dist, version, tag)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            zi = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if arcname.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return filename
