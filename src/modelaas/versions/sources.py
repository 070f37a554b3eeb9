"""Where a version's files come from: a finished training's output folder, or an archive.

Both are gathered into a staging folder of the registry (:meth:`VersionRegistry.staging`);
only regular files are taken. Archive members with absolute paths, ``..`` parts, links or
devices are refused (400), as are archives that unpack to more than the size limit.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from modelaas.errors import BadRequest, Conflict
from modelaas.jobs.records import Job, JobStatus
from modelaas.versions.registry import Version, VersionRegistry


def register_job(
    registry: VersionRegistry,
    job: Job,
    output: Path,
    *,
    model: str,
    description: str | None = None,
    by: str | None = None,
) -> Version:
    """A version of the files a finished, successful training of ``model`` left in ``output``."""
    if job.model != model:
        raise Conflict(f"Job {job.id} is a training of model {job.model!r}, not of {model!r}.")
    if job.status != JobStatus.DONE:
        raise Conflict(f"Job {job.id} is {job.status.value}: only a training that finished (done) can be registered.")
    staged = registry.staging(model)
    try:
        if output.is_dir():
            for path in sorted(output.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    target = staged / path.relative_to(output)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    metrics = job.metrics if isinstance(job.metrics, dict) else {}
    return registry.register(
        model,
        staged,
        source={"kind": "job", "job": job.id},
        args=job.args,
        metrics=metrics,
        description=description,
        by=by,
    )


def register_archive(
    registry: VersionRegistry,
    archive: Path,
    *,
    model: str,
    filename: str,
    max_size: int,
    description: str | None = None,
    by: str | None = None,
    source: dict[str, Any] | None = None,
) -> Version:
    """A version of the files of a ``.tar.gz``/``.tgz``/``.tar`` or ``.zip`` archive."""
    staged = registry.staging(model)
    try:
        try:
            if zipfile.is_zipfile(archive):
                _unzip(archive, staged, max_size)
            elif tarfile.is_tarfile(archive):
                _untar(archive, staged, max_size)
            else:
                raise BadRequest(f"{filename!r} is not a zip or tar archive (.zip, .tar.gz, .tgz, .tar).")
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BadRequest(f"The archive cannot be read: {exc}.") from None
        except OSError as exc:
            if exc.errno is not None:  # the disk, not the archive
                raise
            raise BadRequest(f"The archive cannot be read: {exc}.") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return registry.register(
        model,
        staged,
        source=source or {"kind": "archive", "filename": filename},
        description=description,
        by=by,
    )


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")) or not path.parts:
        raise BadRequest(f"The archive holds {name!r}, a path outside its own folder: refused.")
    return path


def _unzip(archive: Path, into: Path, max_size: int) -> None:
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = _member_path(info.filename)
            mode = info.external_attr >> 16
            if info.is_dir():
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # a link or a device (0: a file, type unsaid)
                raise BadRequest(f"The archive holds {info.filename!r}, which is not a regular file: refused.")
            total += info.file_size
            if total > max_size:
                raise BadRequest(f"The archive unpacks to more than {max_size} bytes: refused.")
            target = into / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _untar(archive: Path, into: Path, max_size: int) -> None:
    total = 0
    with tarfile.open(archive) as tf:
        for member in tf:
            path = _member_path(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise BadRequest(f"The archive holds {member.name!r}, which is not a regular file: refused.")
            total += member.size
            if total > max_size:
                raise BadRequest(f"The archive unpacks to more than {max_size} bytes: refused.")
            target = into / path
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            assert src is not None
            with src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
