"""Run directories, plots, baselines and (later) sweeps and reports."""
