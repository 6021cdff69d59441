"""Refresh ``caniemail.json``, the snapshot of the caniemail data the email tests read.

    python tests/data/caniemail/update.py [caniemail-X.Y.Z.tgz]

Without an argument it runs ``npm pack caniemail`` in a temporary directory (the npm
registry's ``caniemail`` package ships caniemail.com's data as ``data/caniemail.json``).
It keeps the CSS and HTML features only, and of each feature only the clients the
tests check (``PLATFORMS``), each platform's latest result and the notes it cites.
The data is MIT-licensed (``LICENSE`` beside this file).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLATFORMS = {
    "gmail": ("desktop-webmail", "ios", "android", "mobile-webmail"),
    "outlook": ("windows", "outlook-com"),
    "yahoo": ("desktop-webmail", "ios", "android"),
    "apple-mail": ("macos", "ios"),
}


def snapshot(data: dict[str, Any], version: str) -> dict[str, Any]:
    """The part of caniemail's ``data`` the tests need."""
    features = {}
    for feature in data["data"]:
        if feature["category"] not in ("css", "html"):
            continue
        support = {}
        notes: dict[str, str] = {}
        for family, platforms in PLATFORMS.items():
            for platform in platforms:
                results = feature["stats"].get(family, {}).get(platform)
                if not results:
                    continue
                latest = list(results.values())[-1]
                support[f"{family}/{platform}"] = latest
                for number in re.findall(r"#(\d+)", latest):
                    notes[number] = (feature.get("notes_by_num") or {}).get(number, "")
        features[feature["slug"]] = {
            "title": feature["title"],
            "url": feature["url"],
            "support": support,
            "notes": notes,
        }
    return {
        "source": f"npm caniemail {version}",
        "last_update_date": data["last_update_date"],
        "features": features,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        if len(sys.argv) > 1:
            tarball = Path(sys.argv[1]).resolve()
        else:
            subprocess.run(["npm", "pack", "caniemail"], cwd=folder, check=True)
            tarball = next(Path(folder).glob("caniemail-*.tgz"))
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
        package = Path(folder) / "package"
        version = json.loads((package / "package.json").read_text())["version"]
        data = json.loads((package / "data" / "caniemail.json").read_text())
    result = snapshot(data, version)
    (HERE / "caniemail.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"{len(result['features'])} features from {result['source']}")


if __name__ == "__main__":
    main()
