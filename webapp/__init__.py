"""The review web app (``vigie serve``): staff review, notices approval, public title pages."""
