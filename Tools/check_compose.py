#!/usr/bin/env python3
"""Checks Docker/compose.yaml against the odam it runs (CI; no Docker engine needed).

- every service that runs the odam image calls a real odam subcommand (asked of the built binary's --help);
- workers and coordinators scale with deploy.replicas and get the database and S3 settings;
- the Dockerfile builds with the same command as .ci/run (swift build -c release);
- images from registries are pinned by version, SeaweedFS to the version the tests install.
Usage: python3 Tools/check_compose.py .build/release/odam
"""
import re
import sys

import yaml
from odam_commands import command_problems

odam = sys.argv[1]
compose = yaml.safe_load(open("Docker/compose.yaml"))
services = compose["services"]
problems = []
for name, service in services.items():
    if service.get("image") == "odam:latest":
        problems += command_problems(odam, service.get("command", []), name)
# Images from registries are pinned by version; SeaweedFS to the release the tests run against.
setup_version = re.search(r"^seaweedfs_version=(\S+)", open("Tools/setup").read(), re.MULTILINE).group(1)
for name, service in services.items():
    image = service.get("image", "")
    if image == "odam:latest":
        continue
    tag = image.rpartition(":")[2] if ":" in image else ""
    if tag in ("", "latest"):
        problems.append(f"{name}: image {image!r} is not pinned to a version")
    if image.startswith("chrislusf/seaweedfs") and tag != setup_version:
        problems.append(f"{name}: SeaweedFS {tag!r} differs from the tests' {setup_version!r} (Tools/setup)")
for name in ["worker", "coordinator"]:
    service = services[name]
    if "replicas" not in service.get("deploy", {}):
        problems.append(f"{name}: no deploy.replicas")
    env = service.get("environment", {})
    for variable in ["ODAM_DATABASE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]:
        if variable not in env:
            problems.append(f"{name}: {variable} missing")
dockerfile = open("Docker/Dockerfile").read()
ci = open(".ci/run").read()
tests = open("Tools/test").read()
if "Tools/test" not in ci:
    problems.append(".ci/run no longer runs the README's test command (Tools/test)")
if "swift build -c release" not in dockerfile or "swift build -c release" not in tests:
    problems.append("the Dockerfile and Tools/test no longer build with the same command (swift build -c release)")
if "bash Tools/setup" not in dockerfile or "bash Tools/setup" not in tests:
    problems.append("the Dockerfile and Tools/test no longer install with Tools/setup")
for problem in problems:
    print("compose:", problem)
sys.exit(1 if problems else 0)
