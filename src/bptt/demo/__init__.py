"""The demo: the vanishing gradient and its remedies, trained, measured and shown on one page.

``experiment`` trains and diagnoses the demo's models (``run_demo``); ``story``
says in words what each remedy family did (``remedy_notes``, ``remedy_paragraphs``);
``tables`` holds the demo's table and the words beside its figures; ``page``
writes the self-contained, interactive HTML page of the result (``write_demo_page``).
"""

from bptt.demo.experiment import DemoModel, DemoResult, DemoSettings, ModelResult, demo_plan, run_demo
from bptt.demo.page import write_demo_page
from bptt.demo.story import RemedyNote, remedy_notes, remedy_paragraphs

__all__ = [
    "DemoModel",
    "DemoResult",
    "DemoSettings",
    "ModelResult",
    "RemedyNote",
    "demo_plan",
    "remedy_notes",
    "remedy_paragraphs",
    "run_demo",
    "write_demo_page",
]
