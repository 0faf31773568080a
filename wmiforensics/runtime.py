"""A private Volatility run directory: its own symbol cache and a writable symbol folder first on the path.

Volatility 2.28 keeps one identifier cache per cache path. When a run with another symbol path
rebuilds that cache, an ISF another run relies on drops out of it; that run then "downloads" the PDB
(``PDBUtility.download_pdb_isf``), which opens ``<first symbol dir>/windows/<pdb>/<GUID-age>.json.xz``
for writing (truncating an ISF that is already there), fails offline, and removes the file in its
``finally`` clause. With the user's ``-s`` folder first on the path, that deletes the user's ISF.

Every run of this suite therefore gets (1) a cache path nobody else uses, so no other run rebuilds
its identifier cache, and (2) an empty private folder placed before the user's symbol folders, so
any download attempt writes, and removes, only inside the run directory.

A fresh identifier cache costs a run the indexing of every ISF Volatility bundles (over a hundred
files, 5-20 s). So a run starts from a private *copy* of the last run's identifier cache (kept in
``$WMI_FORENSICS_CACHE`` or ``~/.cache/wmi-forensics``) and leaves its own copy there when it ends,
replaced atomically. A copy is never shared while in use: Volatility drops entries for files not on
this run's symbol path from its own copy only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

#: Volatility's identifier cache file name (``volatility3.framework.constants.IDENTIFIERS_FILENAME``).
IDENTIFIERS_FILENAME = "identifier.cache"


def seed_folder() -> Path:
    """Where the identifier cache a run starts from is kept between runs."""
    configured = os.environ.get("WMI_FORENSICS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "wmi-forensics"


@dataclass
class RunDirectory:
    """Private cache and symbol folder of one run; ``close()`` removes both."""

    root: Path
    seed: Optional[Path] = None

    @classmethod
    def create(cls, seed: Optional[Path] = None, parent: Optional[Path] = None) -> RunDirectory:
        """A new run directory in ``parent`` (default: the system's temporary folder)."""
        root = Path(tempfile.mkdtemp(prefix="wmi-forensics-run-", dir=parent))
        (root / "cache").mkdir()
        (root / "symbols").mkdir()
        run = cls(root, seed or seed_folder())
        # no seed yet (first run) or an unreadable one: Volatility builds the cache afresh
        with contextlib.suppress(OSError):
            shutil.copyfile(run.seed / IDENTIFIERS_FILENAME, run.cache_path / IDENTIFIERS_FILENAME)
        return run

    @property
    def cache_path(self) -> Path:
        return self.root / "cache"

    @property
    def symbols(self) -> Path:
        return self.root / "symbols"

    def symbol_dirs(self, user_dirs: Sequence[str]) -> List[str]:
        """The symbol path for Volatility: the private writable folder, then the user's folders."""
        return [str(self.symbols), *(str(Path(folder).resolve()) for folder in user_dirs if folder)]

    def close(self) -> None:
        self._save_seed()
        shutil.rmtree(self.root, ignore_errors=True)

    def _save_seed(self) -> None:
        built = self.cache_path / IDENTIFIERS_FILENAME
        if self.seed is None or not built.is_file():
            return
        try:
            self.seed.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.seed, prefix=".identifier-")
            os.close(handle)
            shutil.copyfile(built, temporary)
            os.replace(temporary, self.seed / IDENTIFIERS_FILENAME)
        except OSError:
            pass  # the next run only loses time

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
