"""Where the desktop app keeps its files: the one place that decides (napari's ``_platformdirs``).

platformdirs with ``appname="Face2Scene"``, ``appauthor=False``:

- data:   library database, stored versions (restoration results), model packs
- cache:  thumbnails (safe to delete)
- config: settings
- logs:   log files and batch journals

``FACE2SCENE_HOME`` moves the whole tree under one folder (tests, portable installs):
``$FACE2SCENE_HOME/{data,cache,config,logs}``. Qt-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "Face2Scene"
ENV_HOME = "FACE2SCENE_HOME"


@dataclass(frozen=True)
class AppPaths:
    data: Path
    cache: Path
    config: Path
    logs: Path

    @property
    def database(self) -> Path:
        return self.data / "library.sqlite3"

    @property
    def versions(self) -> Path:
        return self.data / "versions"

    @property
    def models(self) -> Path:
        return self.data / "models"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbnails"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    def ensure(self) -> "AppPaths":
        for p in (self.data, self.cache, self.config, self.logs, self.versions, self.models,
                  self.thumbnails):
            p.mkdir(parents=True, exist_ok=True)
        return self


def app_paths(home: str | os.PathLike | None = None) -> AppPaths:
    """Resolve the tree: an explicit ``home``, else ``$FACE2SCENE_HOME``, else platformdirs."""
    home = home if home is not None else os.environ.get(ENV_HOME) or None
    if home:
        root = Path(home).expanduser().resolve()
        return AppPaths(root / "data", root / "cache", root / "config", root / "logs")
    import platformdirs
    return AppPaths(
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
