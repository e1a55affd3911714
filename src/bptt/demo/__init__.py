"""The demo: the vanishing gradient and its remedies, trained, measured and shown on one page.

``experiment`` trains and diagnoses the demo's models (``run_demo``); ``page``
writes the self-contained HTML page of the result (``write_demo_page``).
"""
from bptt.demo.experiment import DemoResult, DemoSettings, ModelResult, demo_runs, run_demo
from bptt.demo.page import write_demo_page

__all__ = ["DemoResult", "DemoSettings", "ModelResult", "demo_runs", "run_demo", "write_demo_page"]
