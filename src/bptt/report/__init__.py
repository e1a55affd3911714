"""Reports: self-contained HTML pages of runs, sweeps and diagnostics."""
