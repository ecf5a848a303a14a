from deepvideo.cli.main import app

app()
