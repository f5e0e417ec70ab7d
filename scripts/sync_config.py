"""Regenerate segmentation_lib/default_config.yaml and docs/configuration.md from configs/default.yaml.

configs/default.yaml is the documented demo run; the packaged defaults are the same file with the demo
paths set to null. tests/test_packaging.py fails when the three drift. Run: `make sync-config`.
"""
import re
from pathlib import Path
t = open("configs/default.yaml").read()
t = re.sub(r"(?m)^  path: \.\./data/demo/transactions\.parquet.*$", "  path: null             # required: CSV, Parquet, a directory or a glob of Parquet files; also .xlsx/.xls (data.sheet), .csv.gz/.csv.zst/.zip", t)
t = re.sub(r"(?m)^    path: \.\./data/demo/customers\.parquet.*$", "    path: null", t)
t = re.sub(r"(?m)^  truth: \.\./data/demo/truth\.parquet.*$", "  truth: null            # optional ground truth (known segments), e.g. from segment demo-data", t)
t = re.sub(r"(?m)^  out_dir: \.\./reports.*$", "  out_dir: reports", t)
lines = t.splitlines()
head = ["# Defaults of the segmentation kit. A run configuration (for example configs/default.yaml) overrides any of",
        "# these; unknown keys are rejected. Relative paths are resolved against the folder of the run configuration."]
i = 0
while lines[i].startswith("#"): i += 1
open("segmentation_lib/default_config.yaml", "w").write("\n".join(head + lines[i:]) + "\n")

from pathlib import Path
defaults = Path("segmentation_lib/default_config.yaml").read_text()
doc = f"""# Run configuration

A run is described by one YAML file (for example `configs/default.yaml`, which runs the demo).
It is merged over the kit's defaults, shown in full below (`segmentation_lib/default_config.yaml`).

- Unknown keys are rejected with the closest known key suggested, so a typo never silently falls back to a default.
- Relative paths (`data.path`, `data.customers.path`, `data.truth`, `rfm.frozen_edges`, `rfm.segment_map` when it is a
  YAML file, `report.out_dir`) are resolved against the folder of the configuration file, so a run behaves the same
  from the repository root, from `notebooks/` in JupyterLab, or from cron.
- `data.columns` and `data.customers.columns` replace the default mapping as a whole: map the canonical names
  (`customer_id`, `timestamp`, `amount`, `order_id`, `product_id`, `quantity`, `unit_price`) to your file's columns,
  `null` for a column you do not have.
- `run.as_of` is the date features are computed at (exclusive, 00:00 UTC). `null` uses the day after the last
  transaction. Transactions on or after `as_of` are excluded and counted by the data-quality step.
- Every run writes the full, resolved configuration into its `manifest.json`.
- Files as people export them (`data.*`, the same keys under `data.customers` and `data.events` where they apply):
  Excel workbooks `.xlsx` / `.xls` (`sheet`: a name or a number from 1), compressed CSV `.csv.gz` / `.csv.zst` /
  a `.zip` holding one CSV (recognised by their first bytes, whatever the name), regional numbers (`decimal`,
  `thousands`: with `decimal: ","` and `thousands: "."`, "1.234,50 EUR" reads as 1234.5), numeric timestamps
  (`timestamp_unit: s | ms | excel`; two-digit years only through an explicit `date_format`). Currency symbols
  (`$`, `EUR`, no-break spaces) have no setting: they are removed by themselves. Without the right setting, a column
  whose numbers follow a regional pattern stops the read with a message naming the setting that reads it, instead
  of dropping rows. Fixed-width text (columns padded with runs of spaces, such as the CDNOW files) is not CSV:
  convert it first (tests/data/test_cdnow_formats.py does it in three lines of polars).

Sections: `run` (name, seed, as-of date), `data` (input and column mapping; customer table, usage event log), `quality` (data-quality policies),
`features` (recent windows, key features of the usage log), `rfm` (scores, segment map, frozen edges, value-vs-engagement matrix), `rules`
(ordered rule-based segments), `clustering` (algorithm, features, k range and business constraints),
`validation` (stability, holdout, actionability thresholds), `predict` (predicted value: count model, period,
horizons, CLV months and discount, churn-risk cuts, the value x churn-risk matrix cuts), `report` (notebooks and output folder).

## Defaults

```yaml
{defaults.rstrip()}
```
"""
Path("docs/configuration.md").write_text(doc)
