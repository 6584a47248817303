"""Checks injected manifests against Kubernetes' JSON schemas (kubernetes-validate, strict).

Usage: validate-pairs.py VERSION INPUT OUTPUT [INPUT OUTPUT ...]

Each OUTPUT is tandem's injection of INPUT. Every object in an output must validate whenever the
same object in the input does (some real-world inputs are invalid to begin with, and List items
are checked one by one). Exits 1 naming each object that injection made invalid.
"""
import sys

import kubernetes_validate
import yaml


def objects(path):
    with open(path) as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    flat = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind", "").endswith("List"):
            flat.extend(item for item in document.get("items") or [] if item)
        else:
            flat.append(document)
    return flat


def problem(obj, version):
    """None when obj validates or has no schema for this version, else the error text."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except (kubernetes_validate.SchemaNotFoundError, KeyError, TypeError):
        return None
    except kubernetes_validate.ValidationError as error:
        return str(error)
    return None


def main():
    version, paths = sys.argv[1], sys.argv[2:]
    failures, checked = [], 0
    for source, injected in zip(paths[0::2], paths[1::2]):
        before, after = objects(source), objects(injected)
        if len(before) != len(after):
            failures.append(f"{source}: {len(before)} objects in, {len(after)} out")
            continue
        for original, result in zip(before, after):
            if problem(original, version) is not None:
                continue
            error = problem(result, version)
            name = f"{result.get('kind')}/{(result.get('metadata') or {}).get('name')}"
            if error is not None:
                failures.append(f"{source}: {name}: {error}")
            checked += 1
    for failure in failures:
        print(f"invalid after injection: {failure}", file=sys.stderr)
    print(f"{checked} objects valid against Kubernetes {version} schemas after injection", file=sys.stderr)
    return 1 if failures or checked == 0 else 0


sys.exit(main())
