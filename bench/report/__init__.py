"""Reporting: tables, figures, the HTML report, source attribution, regression checks and the demo.

Reads run directories; never fits or scores.
"""
