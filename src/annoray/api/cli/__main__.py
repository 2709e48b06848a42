from annoray.api.cli import app

app()
