#!/usr/bin/env python3
"""Helpers for scripts/build-lambda.sh: reading the manifest, writing reproducible zips,
checksums, and telling an ELF binary's architecture. Standard library only.

  lambda_artifacts.py functions MANIFEST [NAME…]   one line per function: name, crate, package, arch
  lambda_artifacts.py check-workspace MANIFEST     the manifest and the workspace's functions/ agree
  lambda_artifacts.py zip BINARY OUT.zip          a zip holding BINARY as `bootstrap`
  lambda_artifacts.py checksums DIR               DIR/checksums.json from DIR/*/*.zip
  lambda_artifacts.py elf-arch FILE               arm64 or x86_64
  lambda_artifacts.py check-zip ZIP ARCH          exactly one executable `bootstrap` of ARCH
"""

import base64
import hashlib
import json
import os
import stat
import sys
import tomllib
import zipfile

# The earliest time a zip can store: with it, the same binary always gives the same zip bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
ELF_MACHINES = {0xB7: "arm64", 0x3E: "x86_64"}


class UsageError(Exception):
    """Bad input from the caller: exit status 2."""


def load_manifest(path):
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"no lambda.manifest.json at {path}")
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e}")
    functions = manifest.get("functions")
    if not isinstance(manifest.get("service"), str) or not isinstance(functions, list) or not functions:
        raise UsageError(f"{path} needs a 'service' name and a non-empty 'functions' list")
    # A function given as an "executable" (any file that speaks the Lambda Runtime API) runs in
    # ws-local only: there is nothing here to build or deploy.
    functions = [f for f in functions if "executable" not in f]
    manifest["functions"] = functions
    for f in functions:
        for field in ("name", "crate", "architecture"):
            if not isinstance(f.get(field), str):
                raise UsageError(f"{path}: every function needs '{field}' (a string)")
        if f["architecture"] not in ("arm64", "x86_64"):
            raise UsageError(f"{path}: {f['name']} has architecture {f['architecture']!r}; use arm64 or x86_64")
    return manifest


def cmd_functions(manifest_path, *names):
    manifest = load_manifest(manifest_path)
    known = {f["name"]: f for f in manifest["functions"]}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown function {name!r}; the manifest lists: {', '.join(known)}")
    print(f"service\t{manifest['service']}")
    root = os.path.dirname(os.path.abspath(manifest_path))
    for f in manifest["functions"]:
        if not names or f["name"] in names:
            print(f"function\t{f['name']}\t{f['crate']}\t{package_name(root, f)}\t{f['architecture']}")


def package_name(root, function):
    """The Cargo package (and binary) name of a function's crate."""
    cargo_toml = os.path.join(root, function["crate"], "Cargo.toml")
    try:
        with open(cargo_toml, "rb") as f:
            return tomllib.load(f)["package"]["name"]
    except FileNotFoundError:
        raise UsageError(f"{function['name']}: the manifest names crate {function['crate']!r}, which has no Cargo.toml")


def cmd_check_workspace(manifest_path):
    """Every crate under functions/ is in the manifest, and every manifest crate is a workspace
    member with a binary: one list of functions, no strays."""
    import subprocess

    manifest = load_manifest(manifest_path)
    root = os.path.dirname(os.path.abspath(manifest_path))
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", os.path.join(root, "Cargo.toml")],
            check=True,
            capture_output=True,
        ).stdout
    )
    members = {}
    for package in metadata["packages"]:
        crate = os.path.relpath(os.path.dirname(package["manifest_path"]), root)
        members[crate] = any("bin" in target["kind"] for target in package["targets"])
    in_manifest = {f["crate"]: f["name"] for f in manifest["functions"]}
    problems = []
    for crate, name in in_manifest.items():
        if crate not in members:
            problems.append(f"{name}: crate {crate} is not a member of the Cargo workspace")
        elif not members[crate]:
            problems.append(f"{name}: crate {crate} has no binary (src/main.rs)")
    for crate in members:
        if crate.startswith("functions" + os.sep) and crate not in in_manifest:
            problems.append(f"crate {crate} is in the workspace but not in lambda.manifest.json")
    if problems:
        raise UsageError("the manifest and the workspace disagree: " + "; ".join(problems))


def cmd_zip(binary, out):
    with open(binary, "rb") as f:
        data = f.read()
    info = zipfile.ZipInfo("bootstrap", date_time=FIXED_TIME)
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    tmp = out + ".partial"
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr(info, data, compresslevel=9)
    os.replace(tmp, out)
    digest = sha256_file(out)
    with open(out + ".sha256", "w", encoding="utf-8") as f:
        f.write(f"{digest.hexdigest()}  {os.path.basename(out)}\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def elf_arch(data, what):
    if data[:4] != b"\x7fELF":
        raise UsageError(f"{what} is not an ELF executable")
    machine = int.from_bytes(data[18:20], "little")
    if machine not in ELF_MACHINES:
        raise UsageError(f"{what} is an ELF file for machine {machine:#x}, neither arm64 nor x86_64")
    return ELF_MACHINES[machine]


def cmd_elf_arch(path):
    with open(path, "rb") as f:
        print(elf_arch(f.read(20), path))


def cmd_check_zip(path, arch):
    with zipfile.ZipFile(path) as z:
        entries = z.infolist()
        if [e.filename for e in entries] != ["bootstrap"]:
            raise UsageError(f"{path} holds {[e.filename for e in entries]}, not exactly ['bootstrap']")
        mode = entries[0].external_attr >> 16
        if not mode & 0o111 or not stat.S_ISREG(mode):
            raise UsageError(f"{path}: bootstrap has mode {oct(mode)}, not an executable file")
        found = elf_arch(z.read("bootstrap")[:20], f"{path}:bootstrap")
        if found != arch:
            raise UsageError(f"{path}: bootstrap is {found}, expected {arch}")


def cmd_checksums(directory):
    """checksums.json for every <Function>/<Function>.zip under directory, for Terraform's
    source_code_hash (base64) and for humans and CI (hex)."""
    result = {}
    for name in sorted(os.listdir(directory)):
        zip_path = os.path.join(directory, name, f"{name}.zip")
        if not os.path.isfile(zip_path):
            continue
        digest = sha256_file(zip_path).digest()
        with zipfile.ZipFile(zip_path) as z:
            arch = elf_arch(z.read("bootstrap")[:20], zip_path)
        result[name] = {
            "zip": f"{name}/{name}.zip",
            "architecture": arch,
            "size": os.path.getsize(zip_path),
            "sha256": digest.hex(),
            "sha256_base64": base64.b64encode(digest).decode(),
        }
    tmp = os.path.join(directory, "checksums.json.partial")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(directory, "checksums.json"))


COMMANDS = {
    "functions": cmd_functions,
    "check-workspace": cmd_check_workspace,
    "zip": cmd_zip,
    "checksums": cmd_checksums,
    "elf-arch": cmd_elf_arch,
    "check-zip": cmd_check_zip,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except UsageError as e:
        print(f"build-lambda: {e}", file=sys.stderr)
        sys.exit(2)
