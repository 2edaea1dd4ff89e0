"""Preflight of the lab's base images: there, Datacenter where S2D needs it (R-55),
en-US (R-88), and for images image.build made, their sidecar (R-123).

Read only. Called by hvlab.steps.host.preflight with what it read already (one
Get-VHD per image, and the editions and sidecars when every image was there);
otherwise reads the editions and sidecars of the images that are there in one round
trip. Returns the problems found and notes what it learnt in `numbers` (edition,
language, staged roles per image).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hvlab.facts import Reads
from hvlab.steps.common import SILENT, first, text, val

# The guests' language hvlab builds and tests with: group names, integration
# service names and cluster validation are translated on other images.
LANGUAGE = "en-US"


def sidecar_facts(raw: list[Any], version: int | None = None) -> dict[str, Any] | None:
    """The sidecar image.build wrote (Get-Content -Raw), or None when missing or unreadable.
    `version`: only a sidecar of that format (image.build's own checks); None: any."""
    body = "".join(text(r) for r in raw).strip()
    if not body:
        return None
    try:
        facts = json.loads(body)
    except ValueError:
        return None
    if not isinstance(facts, dict) or not facts.get("hvlab_image"):
        return None
    return facts if version is None or facts["hvlab_image"] == version else None


EDITION_READ = "Get-WindowsImage"


def add_reads(reads: Reads, images: list[tuple[str, Any]]) -> None:
    """Each image's edition and language (Get-WindowsImage, which refuses a file that is
    not there) and its sidecar, named by the image's key."""
    for key, image in images:
        reads.add(f"edition:{key}", (EDITION_READ, {"ImagePath": image.vhdx, "Index": 1}))
        if image.sidecar is not None:
            reads.add(
                f"sidecar:{key}", ("Get-Content", {"Path": image.sidecar, "Raw": True, **SILENT})
            )


def check(
    host: Any,
    lab: Any,
    images: list[tuple[str, Any]],
    vhds: list[list[Any]],
    numbers: dict[str, Any],
    read: Mapping[str, list[Any]] | None = None,
) -> list[str]:
    """`read`: the answers of add_reads for every image, when preflight could read them
    with its other facts (every image was there); else the images that are there are
    read here, in one round trip."""
    problems: list[str] = []
    present = [(key, image) for (key, image), vhd in zip(images, vhds, strict=True) if vhd]
    for key, image in images:
        if (key, image) in present:
            continue
        if image.name is not None:
            problems.append(
                f"image {key}: no image named {image.name} in {image.folder} "
                f"({image.vhdx} does not exist); build it with 'invoke image.build --name "
                f"{image.name} ...' or see 'invoke image.list' (R-123)"
            )
        else:
            problems.append(f"image {key}: {image.path} does not exist on the host")
    if read is None and present:
        # Only images that are there: Get-WindowsImage refuses a file that is not.
        reads = Reads()
        add_reads(reads, present)
        read = reads.send(host)
    for key, image in present:
        assert read is not None
        info = first(read[f"edition:{key}"])
        facts = sidecar_facts(read[f"sidecar:{key}"]) if image.sidecar is not None else None
        edition = text(val(info, "EditionId")) or text(val(info, "ImageName"))
        languages = val(info, "Languages") or []
        language = text(languages[0] if isinstance(languages, list) and languages else languages)
        numbers[f"image_{key}_edition"] = edition
        numbers[f"image_{key}_language"] = language
        users = [vm for vm in lab.vms if vm.image == key]
        nodes = [vm.name for vm in users if vm.role == "node"]
        where = f"{image.name} ({image.vhdx})" if image.name else image.vhdx
        if image.sidecar is not None:
            if facts is None:
                problems.append(
                    f"image {key}: {image.vhdx} has no readable sidecar {image.sidecar}: it was "
                    "not built by image.build, or its build did not finish; run image.build "
                    "again or refer to the file by path (R-123)"
                )
            elif text(facts.get("edition")).lower() != edition.lower():
                problems.append(
                    f"image {key}: {image.vhdx} holds {edition}, its sidecar says "
                    f"{facts.get('edition')}: the file was changed after image.build (R-123)"
                )
            else:
                numbers[f"image_{key}_features"] = list(facts.get("features") or [])
        if nodes and "datacenter" not in edition.lower():
            problems.append(
                f"image {key} ({where}) is {edition or 'of unknown edition'}; Storage Spaces Direct "
                f"needs Datacenter for {', '.join(nodes)} (R-55)"
            )
        if users and language and language.lower() != LANGUAGE.lower():
            problems.append(
                f"image {key} ({where}) is a {language} image; Windows translates group names, "
                "integration service names and cluster validation on it, which hvlab and "
                f"Test-Cluster do not handle: build an {LANGUAGE} image (R-88, R-49)"
            )
    return problems
