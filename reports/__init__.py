"""Daily match report: one self-contained HTML file and CSV files per day (``vigie report``)."""
