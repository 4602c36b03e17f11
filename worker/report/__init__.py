"""Reporting: summaries, the HTML report and job-level figures, fed by each kind's report hooks."""
