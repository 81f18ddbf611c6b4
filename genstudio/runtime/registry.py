"""The model registry: every folder under the shipped and user model roots, ready or with the reason why not."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from genstudio.runtime import paths, safety
from genstudio.runtime.manifest import MANIFEST_NAME, Manifest, ManifestError, ModelFile


class ModelNotFound(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class ModelNotReady(RuntimeError):
    pass


@dataclass
class ModelEntry:
    folder: Path
    source: str  # "shipped" or "user"
    manifest: Manifest | None
    error: str | None = None  # the exact reason it is not ready; None when ready
    reports: dict[str, safety.OnnxReport] = field(default_factory=dict)  # deep-checked files, by path

    @property
    def ready(self) -> bool:
        return self.error is None and self.manifest is not None

    @property
    def status(self) -> str:
        return "ready" if self.ready else f"error: {self.error}"

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else self.folder.name

    @property
    def family(self) -> str:
        return self.manifest.family if self.manifest else "?"

    def path(self, role: str) -> Path:
        if not self.manifest:
            raise ModelNotReady(f"{self.name}: {self.error}")
        return self.folder / self.manifest.file_for(role).path

    def size_bytes(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.folder):
            for f in files:
                try:
                    total += (Path(root) / f).stat().st_size
                except OSError:
                    pass
        return total

    def require_ready(self) -> ModelEntry:
        if not self.ready:
            raise ModelNotReady(f"model {self.name!r} is not ready: {self.error}")
        return self

    def to_dict(self) -> dict:
        m = self.manifest
        return {
            "name": self.name,
            "family": self.family,
            "title": m.display_name if m else self.folder.name,
            "version": m.version if m else None,
            "status": "ready" if self.ready else "error",
            "error": self.error,
            "folder": str(self.folder),
            "source": self.source,
            "size_bytes": self.size_bytes(),
            "metrics": m.metrics if m else {},
        }


def default_roots() -> list[tuple[Path, str]]:
    return [(paths.shipped_models_dir(), "shipped"), (paths.user_models_dir(), "user")]


def check_folder(folder: Path, source: str = "user", *, deep: bool = False) -> ModelEntry:
    """Read one model folder's manifest and check its files; deep=True also runs the ONNX safety checks."""
    folder = Path(folder)
    try:
        manifest = Manifest.load(folder)
    except ManifestError as e:
        return ModelEntry(folder, source, None, str(e))
    entry = ModelEntry(folder, source, manifest)
    try:
        entry.error = _file_error(folder, manifest, entry.reports, deep)
    except (OSError, RuntimeError) as e:  # a path too long, no permission; RuntimeError: a symlink loop
        entry.error = f"its files cannot be checked: {getattr(e, 'strerror', None) or e}"
    return entry


def _file_error(folder: Path, manifest: Manifest, reports: dict[str, safety.OnnxReport], deep: bool) -> str | None:
    """Why the manifest's files are not usable, or None; deep=True fills `reports`."""
    root = folder.resolve()
    for f in manifest.files:
        p = folder / f.path
        if p.is_symlink() and not safety.is_inside(p.resolve(), root):
            return f"{f.path} is a link that leaves the model folder"
        if not p.exists():
            return f"{f.path} ({f.role}) is missing"
        if not safety.is_inside(p.resolve(), root):
            return f"{f.path} resolves outside the model folder"
    if deep:
        for f in manifest.onnx_files():
            try:
                reports[f.path] = safety.ensure_safe(folder / f.path, root=folder)
            except safety.UnsafeModelError as e:
                return f"{f.path}: {e}"
    return None


class Registry:
    """Scans the model roots. Every folder with a model.json, or with .onnx files, is listed."""

    def __init__(self, roots: list[tuple[Path, str]] | None = None) -> None:
        self.roots = roots if roots is not None else default_roots()
        self._entries: list[ModelEntry] | None = None

    def scan(self, *, deep: bool = False) -> list[ModelEntry]:
        entries: list[ModelEntry] = []
        seen: dict[str, ModelEntry] = {}
        for root, source in self.roots:
            if not root.is_dir():
                continue
            try:
                folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue  # an unreadable models folder lists nothing rather than stopping the scan
            for folder in folders:
                try:
                    if not (folder / MANIFEST_NAME).exists() and not any(folder.glob("*.onnx")):
                        continue  # not a model folder (e.g. a README-only folder)
                except OSError:
                    pass  # unreadable: listed with the reason check_folder finds
                entry = check_folder(folder, source, deep=deep)
                if entry.manifest and entry.name in seen and entry.ready:
                    entry.error = f"another model is already named {entry.name!r} ({seen[entry.name].folder})"
                elif entry.manifest:
                    seen.setdefault(entry.name, entry)
                entries.append(entry)
        self._entries = entries
        return entries

    def entries(self) -> list[ModelEntry]:
        return self._entries if self._entries is not None else self.scan()

    def refresh(self) -> list[ModelEntry]:
        return self.scan()

    def get(self, name: str) -> ModelEntry:
        for e in self.entries():
            if e.name == name:
                return e
        known = ", ".join(sorted(e.name for e in self.entries() if e.ready)) or "none"
        raise ModelNotFound(f"no model named {name!r} (ready models: {known})")

    def ready(self, family: str | None = None) -> list[ModelEntry]:
        return [e for e in self.entries() if e.ready and (family is None or e.family == family)]

    # -- import ------------------------------------------------------------------------------
    def import_path(self, path: Path, *, dest_root: Path | None = None) -> ModelEntry:
        """Check a model folder or a bare .onnx file, then copy it into the user's models folder."""
        path = Path(path)
        dest_root = dest_root or paths.user_models_dir()
        if path.is_dir():
            entry = check_folder(path, "user", deep=True)
            if not entry.ready:
                raise ModelNotReady(f"{path}: {entry.error}")
            if any(e.name == entry.name for e in self.entries()):
                raise ModelNotReady(f"a model named {entry.name!r} is already installed")
            target = _free_folder(dest_root, entry.name)
            _copy_or_clean(target, lambda: shutil.copytree(path, target, symlinks=False))
        elif path.suffix.lower() == ".onnx" and path.is_file():
            report = safety.ensure_safe(path, root=path.parent)
            name = _safe_name(path.stem)
            if any(e.name == name for e in self.entries()):
                raise ModelNotReady(f"a model named {name!r} is already installed")
            target = _free_folder(dest_root, name)

            def copy_bare() -> None:
                target.mkdir(parents=True)
                shutil.copy2(path, target / path.name)
                for rel in report.external_files:
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path.parent / rel, target / rel)
                Manifest(family="onnx", name=name, version="1", title=path.stem,
                         files=[ModelFile(path=path.name, role="model")],
                         description=f"Imported from {path.name}",
                         build={"imported_from": str(path)}).save(target)

            _copy_or_clean(target, copy_bare)
        else:
            raise ModelNotReady(f"{path} is neither a model folder nor an .onnx file")
        self._entries = None
        imported = check_folder(target, "user", deep=True)
        if not imported.ready:
            shutil.rmtree(target, ignore_errors=True)
            raise ModelNotReady(f"{path}: {imported.error}")
        return imported


def _copy_or_clean(target: Path, copy) -> None:
    """Run `copy`; on any failure (a full disk, a vanished file) remove what it left, then re-raise."""
    try:
        copy()
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "model"
    return name[:100]


def _free_folder(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    i = 2
    while target.exists():
        target = root / f"{name}-{i}"
        i += 1
    return target
