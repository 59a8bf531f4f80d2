#!/usr/bin/env python3
"""Checks Docker/kubernetes against the Kubernetes API schemas, KEDA's ScaledObject and the odam it runs (CI).

- every core resource validates strictly (unknown fields refused) with kubernetes-validate's bundled schemas;
- the ScaledObject validates against KEDA's CRD model (cloudcoil-models-keda, generated from KEDA's CRDs), unknown
  fields refused; it targets the worker Deployment, its PostgreSQL trigger names only the scaler's own metadata keys,
  and the variable it connects with is set in the worker's container;
- the kustomization lists every manifest of the folder, and nothing else;
- every container runs the odam image with a real odam subcommand and options (asked of the built binary's --help),
  and gets ODAM_DATABASE_URL from the Secret, never as a literal.
(The scaler's query itself runs against the real schema in Tests/RunnerTests/KubernetesScalerTests.swift.)
Usage: python Tools/check_kubernetes.py .build/release/odam   (.ci/run installs the validators into .venv-k8s)
"""
import pathlib
import sys

import kubernetes_validate
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from odam_commands import command_problems

# The oldest release the clouds still run and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
POSTGRESQL_SCALER_KEYS = {
    "connectionFromEnv", "host", "port", "userName", "dbName", "sslmode", "passwordFromEnv", "query",
    "targetQueryValue", "activationTargetQueryValue", "metricName",
}

odam = sys.argv[1]
folder = pathlib.Path(__file__).resolve().parent.parent / "Docker/kubernetes"
problems = []
documents = {}
for path in sorted(folder.glob("*.yaml")):
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            documents.setdefault(path.name, []).append(document)


def pruned(value):
    """The value without empty containers and nulls, to compare what a model kept with what was written."""
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def dropped(written, kept, path=""):
    """The paths of `written` that the model did not keep (fields it does not know)."""
    if isinstance(written, dict) and isinstance(kept, dict):
        return [p for k, v in written.items() for p in (dropped(v, kept[k], f"{path}.{k}") if k in kept else [f"{path}.{k}"[1:]])]
    if isinstance(written, list) and isinstance(kept, list) and len(written) == len(kept):
        return [p for i, (w, k) in enumerate(zip(written, kept)) for p in dropped(w, k, f"{path}[{i}]")]
    return [] if written == kept else [path[1:] or "(root)"]


deployments = {}
for name, resources in documents.items():
    for resource in resources:
        kind = resource.get("kind")
        if kind == "Kustomization":
            listed = set(resource.get("resources", []))
            present = set(documents) - {name}
            if listed != present:
                problems.append(f"{name}: resources {sorted(listed)} differ from the folder's manifests {sorted(present)}")
            continue
        if kind == "ScaledObject":
            try:
                model = ScaledObject.model_validate(resource)
            except Exception as error:  # pydantic's ValidationError: the message names the field
                problems.append(f"{name}: not a valid KEDA ScaledObject: {error}")
                continue
            kept = pruned(model.model_dump(by_alias=True, exclude_none=True, mode="json"))
            unknown = dropped(pruned(resource), kept)
            if unknown:
                problems.append(f"{name}: fields KEDA's ScaledObject does not have: {', '.join(unknown)}")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name}: {kind} {resource['metadata']['name']} (Kubernetes {version}): {error.message} at {list(error.path)}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{name}: no schema for {kind} in Kubernetes {version}: {error}")
        if kind in ("Deployment", "Job"):
            deployments[resource["metadata"]["name"]] = (name, resource)

for object_name, (name, resource) in deployments.items():
    for container in resource["spec"]["template"]["spec"]["containers"]:
        if container["image"] != "odam":
            problems.append(f"{name}: container {container['name']} runs {container['image']!r}, not the odam image")
        problems += command_problems(odam, container.get("args", []), f"{name}: container {container['name']}")
        env = {e["name"]: e for e in container.get("env", [])}
        database = env.get("ODAM_DATABASE_URL", {})
        if "secretKeyRef" not in database.get("valueFrom", {}):
            problems.append(f"{name}: ODAM_DATABASE_URL must come from the Secret (secretKeyRef), not a literal")

for name, resources in documents.items():
    for resource in resources:
        if resource.get("kind") != "ScaledObject":
            continue
        target = resource["spec"]["scaleTargetRef"]["name"]
        if target not in deployments or deployments[target][1]["kind"] != "Deployment":
            problems.append(f"{name}: scaleTargetRef {target!r} is not a Deployment of the folder")
            continue
        containers = deployments[target][1]["spec"]["template"]["spec"]["containers"]
        for trigger in resource["spec"]["triggers"]:
            if trigger["type"] != "postgresql":
                problems.append(f"{name}: trigger {trigger['type']!r}; odam's work is counted in PostgreSQL")
                continue
            unknown = set(trigger["metadata"]) - POSTGRESQL_SCALER_KEYS
            if unknown:
                problems.append(f"{name}: the PostgreSQL scaler has no metadata {sorted(unknown)}")
            variable = trigger["metadata"].get("connectionFromEnv")
            if variable and not any(variable in {e["name"] for e in c.get("env", [])} for c in containers):
                problems.append(f"{name}: connectionFromEnv {variable} is not set in {target}'s containers")

if problems:
    print("Docker/kubernetes:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
count = sum(len(r) for r in documents.values())
print(f"Docker/kubernetes: {count} resources valid (Kubernetes {' and '.join(KUBERNETES_VERSIONS)}, KEDA's ScaledObject)")
