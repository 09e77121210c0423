"""Readers for the office and e-book formats, one module per family; `extract.py` dispatches to them.

Every one of these formats is a zip of XML: `archive.check_archive` vets the zip (sizes, ratio,
entity declarations) before any library opens it.
"""
