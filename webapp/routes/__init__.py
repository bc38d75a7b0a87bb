"""The web app's routers, one per area; ``webapp.app.create_app`` includes them in order."""
