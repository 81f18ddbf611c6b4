"""model.json: what a model folder holds, how it was built and what it measured."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "model.json"
SCHEMA_VERSION = 1

# The generative families the studio knows. "onnx" is a bare graph imported without a family.
FAMILIES = ("llm", "diffusion", "gan", "vae", "flow", "autoregressive", "evaluator", "onnx")
COMPARED_FAMILIES = ("vae", "flow", "gan", "diffusion", "autoregressive")  # Compare's families, in its row order

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class ManifestError(ValueError):
    """A model.json that cannot be used; the message names the field and what is wrong."""


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative to the model folder, forward slashes
    role: str  # what the engine uses it for: "decoder", "unet", "tokenizer", ...

    @property
    def is_onnx(self) -> bool:
        return self.path.lower().endswith(".onnx")


@dataclass
class Manifest:
    family: str
    name: str
    version: str
    files: list[ModelFile]
    title: str = ""  # a human name for lists; falls back to `name`
    description: str = ""
    io: dict[str, Any] = field(default_factory=dict)  # role -> {"inputs": [...], "outputs": [...]}
    defaults: dict[str, Any] = field(default_factory=dict)  # generation settings the UI starts from
    license: str = ""
    data_source: str = ""
    build: dict[str, Any] = field(default_factory=dict)  # command, date, seconds, versions
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, with their method
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific settings
    schema: int = SCHEMA_VERSION

    # -- lookups -------------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return self.title or self.name

    def files_with_role(self, role: str) -> list[ModelFile]:
        return [f for f in self.files if f.role == role]

    def file_for(self, role: str) -> ModelFile:
        found = self.files_with_role(role)
        if not found:
            raise ManifestError(f"model {self.name!r} has no file with role {role!r}")
        return found[0]

    def onnx_files(self) -> list[ModelFile]:
        return [f for f in self.files if f.is_onnx]

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = [asdict(f) for f in self.files]
        return d

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("model.json must hold a JSON object")
        schema = data.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ManifestError(f"model.json schema {schema!r} is newer than this studio reads ({SCHEMA_VERSION})")
        for key in ("family", "name", "version", "files"):
            if key not in data:
                raise ManifestError(f"model.json is missing {key!r}")
        family = data["family"]
        if family not in FAMILIES:
            raise ManifestError(f"model.json family {family!r} is not one of {', '.join(FAMILIES)}")
        name = data["name"]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ManifestError(
                f"model.json name {name!r} must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        version = data["version"]
        if not isinstance(version, (str, int, float)):
            raise ManifestError("model.json version must be a string")
        raw_files = data["files"]
        if not isinstance(raw_files, list) or not raw_files:
            raise ManifestError("model.json 'files' must be a non-empty list")
        files = []
        for i, f in enumerate(raw_files):
            if not isinstance(f, dict) or not isinstance(f.get("path"), str) or not isinstance(f.get("role"), str):
                raise ManifestError(f"model.json files[{i}] needs a string 'path' and 'role'")
            files.append(ModelFile(path=_check_relative(f["path"], f"files[{i}].path"), role=f["role"]))
        kwargs: dict[str, Any] = {}
        for key, kind in (("title", str), ("description", str), ("license", str), ("data_source", str),
                          ("io", dict), ("defaults", dict), ("build", dict), ("metrics", dict), ("extra", dict)):
            if key in data:
                if not isinstance(data[key], kind):
                    raise ManifestError(f"model.json {key!r} must be a {kind.__name__}")
                kwargs[key] = data[key]
        return cls(family=family, name=name, version=str(version), files=files, schema=schema, **kwargs)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = Path(folder) / MANIFEST_NAME
        try:
            if not path.is_file():
                raise ManifestError(f"no {MANIFEST_NAME} in {folder}")
            if path.stat().st_size > _MAX_MANIFEST_BYTES:
                raise ManifestError(f"{MANIFEST_NAME} is larger than {_MAX_MANIFEST_BYTES // 1024 // 1024} MiB")
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ManifestError(f"{MANIFEST_NAME} is not UTF-8 text: {e.reason}") from None
        except json.JSONDecodeError as e:
            raise ManifestError(f"{MANIFEST_NAME} is not valid JSON: {e.msg} at line {e.lineno}") from None
        except RecursionError:
            raise ManifestError(f"{MANIFEST_NAME} nests too deeply to read") from None
        except OSError as e:  # unreadable (permissions), vanished, or an I/O error
            raise ManifestError(f"{MANIFEST_NAME} cannot be read: {e.strerror or e}") from None
        return cls.from_dict(data)

    def save(self, folder: Path) -> Path:
        """Write atomically, so that a crash or a full disk never leaves half a manifest."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / MANIFEST_NAME
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target


def _check_relative(path: str, what: str) -> str:
    p = path.replace("\\", "/")
    if not p or p.startswith("/") or re.match(r"^[A-Za-z]:", p) or any(part == ".." for part in p.split("/")):
        raise ManifestError(f"model.json {what} {path!r} must be a relative path inside the model folder")
    return p
