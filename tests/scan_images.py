"""Images with known package inventories, for the scanning tests.

Package records are written the way each package manager writes them: a dpkg ``status`` file, an
apk ``installed`` database, ``*.dist-info/METADATA``, ``node_modules/<name>/package.json``.
The versions are the real ones the fixture advisories (fixtures/osv) are about.
"""

from __future__ import annotations

import json
import time

from tests.images import OCI_CONFIG, OCI_LAYER, Blob, Image, build_image, sha, tar_layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def os_release(os_id: str, version_id: str, pretty: str) -> bytes:
    return f'PRETTY_NAME="{pretty}"\nNAME="{pretty}"\nID={os_id}\nVERSION_ID="{version_id}"\n'.encode()


def dpkg_status(*packages: tuple[str, str, str | None]) -> bytes:
    """(package, version, source field or None) stanzas, as dpkg writes /var/lib/dpkg/status."""
    stanzas = []
    for name, version, source in packages:
        lines = [f"Package: {name}", "Status: install ok installed", "Priority: required",
                 "Architecture: amd64", f"Version: {version}"]
        if source:
            lines.insert(4, f"Source: {source}")
        lines.append(f"Description: {name}")
        stanzas.append("\n".join(lines))
    return ("\n\n".join(stanzas) + "\n").encode()


def apk_installed(*packages: tuple[str, str, str]) -> bytes:
    """(package, version, origin) blocks, as apk writes /lib/apk/db/installed."""
    blocks = [f"C:Q1abc=\nP:{name}\nV:{version}\nA:x86_64\nS:1000\nI:2000\nT:{name}\no:{origin}\n"
              for name, version, origin in packages]
    return "\n".join(blocks).encode()


def dist_info(site: str, name: str, version: str) -> dict[str, bytes]:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n\n".encode()
    base = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
    return {f"{base}/METADATA": meta, f"{base}/RECORD": b""}


def npm_package(root: str, name: str, version: str) -> dict[str, bytes]:
    doc = json.dumps({"name": name, "version": version, "description": name}).encode()
    return {f"{root}/node_modules/{name}/package.json": doc, f"{root}/node_modules/{name}/index.js": b"//"}


UBUNTU_2204 = os_release("ubuntu", "22.04", "Ubuntu 22.04.1 LTS")
DEBIAN_9 = os_release("debian", "9", "Debian GNU/Linux 9 (stretch)")
ALPINE_320 = os_release("alpine", "3.20.0", "Alpine Linux v3.20")
SITE = "usr/local/lib/python3.11/site-packages"


def ubuntu_image() -> Image:
    status = dpkg_status(("tar", "1.34+dfsg-1build3", None), ("libssl3", "3.0.2-0ubuntu1.10", "openssl"),
                         ("bash", "5.1-6ubuntu1", None))
    return build_image([tar_layer({"usr/lib/os-release": UBUNTU_2204, "var/lib/dpkg/status": status})])


def debian9_image() -> Image:
    base = dpkg_status(("dpkg", "1.18.25", None), ("tzdata", "2021a-0+deb9u3", None))
    more = dpkg_status(("dpkg", "1.18.25", None), ("tzdata", "2021a-0+deb9u3", None),
                       ("libssl1.1", "1.1.0l-1~deb9u6", "openssl"))
    return build_image([
        tar_layer({"usr/lib/os-release": DEBIAN_9, "var/lib/dpkg/status": base}),
        tar_layer({"var/lib/dpkg/status": more}),
    ])


def alpine_image() -> Image:
    db = apk_installed(("musl", "1.2.5-r0", "musl"), ("musl-utils", "1.2.5-r0", "musl"),
                       ("busybox", "1.36.1-r29", "busybox"))
    return build_image([tar_layer({"etc/os-release": ALPINE_320, "lib/apk/db/installed": db})])


def python_image() -> Image:
    files = {"etc/os-release": DEBIAN_9}
    files.update(dist_info(SITE, "pip", "23.1.2"))
    files.update(dist_info(SITE, "setuptools", "65.5.1"))
    files.update(dist_info(SITE, "wheel", "0.40.0"))
    return build_image([tar_layer(files)])


def node_image() -> Image:
    root = "usr/local/lib/node_modules/npm"
    files: dict[str, bytes | None] = {}
    files.update(npm_package(root, "semver", "7.5.1"))
    files.update(npm_package(root, "ip", "1.1.8"))
    files.update(npm_package("app", "ip", "2.0.0"))
    files.update(npm_package("app", "semver", "7.5.2"))
    return build_image([tar_layer(files)])


def raw_image(layers: list[tuple[bytes, str]]) -> Image:
    """An image whose layer blobs are used exactly as given (any bytes, any media type)."""
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": {"t": str(time.time_ns())}},
              "rootfs": {"type": "layers", "diff_ids": [sha(data) for data, _ in layers]}}
    config_blob = Blob(json.dumps(config).encode(), OCI_CONFIG)
    blobs = [Blob(data, media_type) for data, media_type in layers]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_blob.descriptor(),
                "layers": [b.descriptor() for b in blobs]}
    return Image(json.dumps(manifest).encode(), OCI_MANIFEST, [config_blob, *blobs])


def gz_layer(files: dict[str, bytes | None]) -> tuple[bytes, str]:
    return tar_layer(files), OCI_LAYER


def wait_for_scan(ecr, server, repo: str, digest: str, timeout: float = 60) -> dict:
    """Run due jobs until the scan has left IN_PROGRESS (a background worker may hold the job)."""
    deadline = time.time() + timeout
    while True:
        server.run_jobs()
        result = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest},
                                                  maxResults=1000)
        if result["imageScanStatus"]["status"] != "IN_PROGRESS" or time.time() > deadline:
            return result
        time.sleep(0.05)


def scan_and_wait(ecr, server, repo: str, digest: str) -> dict:
    """StartImageScan, then the findings once the scan job has run."""
    ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})
    return wait_for_scan(ecr, server, repo, digest)


def finding_set(result: dict) -> set[tuple[str, str, str, str]]:
    """(name, package_name, package_version, severity) of every basic finding."""
    out = set()
    for f in result["imageScanFindings"]["findings"]:
        attrs = {a["key"]: a["value"] for a in f["attributes"]}
        out.add((f["name"], attrs["package_name"], attrs["package_version"], f["severity"]))
    return out
