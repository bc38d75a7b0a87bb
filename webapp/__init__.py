"""The review web app (``vigie serve``): staff review, notices approval, public title pages.

An entry point. May import: the stages, the domain packages, the core and ``foundation``;
never another entry point (the CLI, the scheduler, ``cluster``, ``demoweb``).
"""
