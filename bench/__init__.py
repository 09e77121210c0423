"""Benchmarks of docassist's embedded default, over real HTTP (issue 6): `python -m bench`.

Each module measures one thing against a baseline taken in the same run (see bench/core.py);
`bench/results/<date>.{json,md}` and `<date>-growth.png` hold the report.
"""
