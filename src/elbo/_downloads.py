"""Data files: found in a data directory, or downloaded from their canonical sources, and verified by the SHA-256 of
their decompressed content (robust to re-compression). Each data sets' module holds its tables (``SHA256``,
``URLS``, ``FOLDERS``) and a ``DataFiles`` over them."""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
import zlib
from pathlib import Path

from ._files import write_atomically
from .errors import InputError

__all__ = ["DataFiles", "decompressed"]


def decompressed(path: Path) -> bytes:
    """The content of ``path``, gunzipped when its name ends in ``.gz``."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"{path}: cannot decompress ({error}): the file is corrupt; delete it and fetch it again") \
            from None


class DataFiles:
    """The files of some data sets: ``sha256[name]`` the digest of file ``name``'s content, ``urls[name]`` where it
    can be downloaded from (none: it cannot), ``folders[dataset]`` the folder of a data set in a data directory. The
    tables are held, not copied: a test may point a URL elsewhere."""

    def __init__(self, *, sha256: dict, urls: dict, folders: dict):
        self.sha256, self.urls, self.folders = sha256, urls, folders

    def find(self, directory: Path, dataset: str, name: str) -> Path | None:
        """File ``name`` (or ``name.gz``) in ``directory/<folder>/`` or ``directory/``, or ``None``."""
        candidates = [d / f for d in (directory / self.folders[dataset], directory) for f in (name, name + ".gz")]
        return next((p for p in candidates if p.is_file()), None)

    def find_or_download(self, directory: Path, dataset: str, name: str, download: bool) -> Path:
        """File ``name`` as ``find`` finds it, downloaded into ``directory/<folder>/`` first when it is missing and
        ``download`` is true; ``FileNotFoundError`` (one line: the file, the folder and why) when it is still
        missing."""
        folder = directory / self.folders[dataset]
        path = self.find(directory, dataset, name)
        if path is None:
            if not download:
                reason = "downloading is off"
            elif not self.urls.get(name):
                reason = "no download source is known for it"
            else:
                reason = self.download(name, folder)
            if reason is not None:
                raise FileNotFoundError(f"{dataset}: {name} (or {name}.gz) is missing from {folder} and could not be "
                                        f"downloaded ({reason}): put the file there, or point data_dir at the folder "
                                        f"that holds it")
            path = self.find(directory, dataset, name)
        return path

    def verified(self, path: Path, name: str) -> bytes:
        """The decompressed content of ``path``, which must be the canonical file ``name``."""
        content = decompressed(path)
        digest = hashlib.sha256(content).hexdigest()
        if digest != self.sha256[name]:
            raise InputError(f"{path}: SHA-256 of the content is {digest[:16]}..., expected "
                             f"{self.sha256[name][:16]}...: the file is corrupt or not the canonical {name}; delete it "
                             f"and fetch it again")
        return content

    def read(self, directory: Path, dataset: str, name: str, download: bool) -> tuple[Path, bytes]:
        """The path of file ``name`` (found as ``name`` or ``name.gz``, or downloaded) and its verified content."""
        path = self.find_or_download(directory, dataset, name, download)
        return path, self.verified(path, name)

    def download(self, name: str, folder: Path) -> str | None:
        """Fetch ``name`` from its sources into ``folder``, verified; ``None`` on success, else the reason."""
        reasons = []
        for url in self.urls[name]:
            target = folder / url.rsplit("/", 1)[-1]
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    raw = response.read()
                content = gzip.decompress(raw) if target.suffix == ".gz" else raw
                if hashlib.sha256(content).hexdigest() != self.sha256[name]:
                    reasons.append(f"{url}: wrong SHA-256")
                    continue
                folder.mkdir(parents=True, exist_ok=True)  # only now: a download that fails leaves no empty folder
                write_atomically(target, raw)
                return None
            except (OSError, EOFError, zlib.error) as error:  # URLError and timeouts are OSErrors
                reasons.append(f"{url}: {getattr(error, 'reason', error)}")
        return "; ".join(reasons)
