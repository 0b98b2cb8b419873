"""deploy/: the scrape config, the alerting rules (with promtool's own unit tests of them) and
the Grafana dashboard, checked by Prometheus' promtool and against the metrics we export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from core.metrics import METRICS
from tests.metrics.promtool import promtool_path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: A metric name in a PromQL expression (`btmon_…`).
NAME = re.compile(r"\bbtmon_[a-z_]+")


def promtool(*argv: str) -> None:
    tool = promtool_path()
    done = subprocess.run(
        [tool, *argv], capture_output=True, text=True, timeout=60, cwd=DEPLOY, check=False
    )
    assert done.returncode == 0, (argv, done.stdout + done.stderr)


def dashboard_exprs() -> list[str]:
    board = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    exprs += [v["query"]["query"] for v in board["templating"]["list"]]
    return exprs


def test_the_scrape_config_and_its_rules_are_valid() -> None:
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")


def test_the_alerts_fire_when_they_should_and_only_then() -> None:
    promtool("test", "rules", "alerts.test.yml")


def test_the_dashboards_queries_parse(tmp_path: Path) -> None:
    """Each dashboard query as a recording rule, so promtool's PromQL parser reads it."""
    exprs = [e for e in dashboard_exprs() if not e.startswith("label_values(")]
    assert exprs
    rules = [
        {"record": f"btmon_dashboard:query{i}", "expr": e.replace("$instance", ".*")}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))


@pytest.mark.parametrize("name", ["alerts.yml", "alerts.test.yml", "grafana-dashboard.json"])
def test_deploy_files_name_only_metrics_we_export(name: str) -> None:
    used = set(NAME.findall((DEPLOY / name).read_text())) - {"btmon_dashboard"}
    assert used, name
    assert used <= METRICS, used - METRICS


def test_the_dashboard_shows_the_fleet_drops_and_latency() -> None:
    board = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    titles = {panel["title"] for panel in board["panels"]}
    assert {"Fleet", "Dropouts per hour", "Latency (last probe)"} <= titles
    table = next(p for p in board["panels"] if p["title"] == "Fleet")
    assert table["type"] == "table"
    assert all(t.get("instant") for t in table["targets"])
