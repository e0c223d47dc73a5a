"""[store] settings of warehouse mode are checked before anything runs (no Spark needed)."""
from __future__ import annotations

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.warehouse import store_settings, warehouse_prefix


@pytest.mark.parametrize("path", ["s3a://risk-lake/monitor", "abfss://c@acct.dfs.core.windows.net/m", "file:///mnt/x"])
def test_a_url_path_is_refused_not_made_a_local_folder(tmp_path, path):
    (tmp_path / "monitor.toml").write_text(f'[store]\nleaves = "spark"\npath = "{path}"\n')
    with pytest.raises(ConfigError, match="URL is not supported yet"):
        store_settings(load_config(tmp_path))


def test_a_relative_folder_is_under_the_project_and_an_absolute_one_stays(tmp_path):
    (tmp_path / "monitor.toml").write_text('[store]\nleaves = "spark"\npath = "lake/leaves"\n')
    assert warehouse_prefix(load_config(tmp_path)) == tmp_path / "lake" / "leaves"
    (tmp_path / "monitor.toml").write_text(f'[store]\nleaves = "spark"\npath = "{tmp_path / "abs"}"\n')
    assert warehouse_prefix(load_config(tmp_path)) == tmp_path / "abs"
