from edgesleep.cli import app

app()
